"""``design``: the cheapest network that reaches a target, by a multi-objective search (Optuna) over any settings,
scored on a validation split, kept in the run store (a rerun continues it), with the Pareto front's files and
its test accuracy measured once per front member after the search (engine.experiments.design)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from optuna.trial import TrialState

from engine.cli.common import (
    EXIT_OK,
    CliError,
    Interrupted,
    add_common,
    cancel_on_sigint,
    finite_float,
    info,
    output_folder,
    positive_int,
    run_store_of,
    set_threads,
    usable_cores,
)
from engine.cli.run_options import add_run_options, apply_sparsity, config_from_args
from engine.core.files import json_safe
from engine.core.progress import CancelToken, RunCancelled
from engine.core.progress_bar import ProgressBar
from engine.data.named import load_dataset
from engine.experiments.design import (
    ATTR_ERROR,
    ATTR_SETTINGS,
    DEFAULT_VALIDATION_FRACTION,
    DesignPlan,
    default_study_name,
    finished,
    open_study,
    search_definition,
    trial_config,
)
from engine.experiments.design_report import front_rows, trial_counts, write_front
from engine.experiments.design_space import (
    METRICS,
    DesignSpecError,
    parse_objectives,
    parse_requirements,
    parse_space,
)
from engine.experiments.design_workers import BACKENDS, run_design
from engine.experiments.recommended import describe_applied

EXAMPLE = (
    "rfexplorer-cli design --model rf-input --dataset mnist --epochs 10 --trials 60 "
    "--space resonators_per_chain=1:100:int:log --space device.tuning_range=0.01:0.5:log "
    "--space device.tuning_bits=4:12:int --maximize val_accuracy --minimize resonators "
    "--minimize device.tuning_range --minimize device.tuning_bits --out design-mnist"
)


class _Objective(argparse.Action):
    """``--maximize NAME`` / ``--minimize NAME``: appended in order to one list of (direction, name)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        found = list(getattr(namespace, self.dest, None) or [])
        found.append((option_string.lstrip("-"), values))
        setattr(namespace, self.dest, found)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "design",
        help="search for the cheapest network that reaches a target (multi-objective, Optuna)",
        description="Search the settings given by --space for the Pareto front of the objectives, scoring every "
        "trial on a validation split; the options of 'train' fix every setting not searched. Writes pareto.csv, "
        "pareto.json, pareto.png and front/trial-NNNN.json into --out. Example: " + EXAMPLE,
    )
    g = p.add_argument_group("search")
    g.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="PATH=SPEC",
        help="a searched setting: PATH=LOW:HIGH[:int][:log] or PATH=A,B,C (a list setting: 0 empty, 200+100 two "
        "layers), e.g. device.tuning_bits=4:12:int or hidden=0,32,100 (repeatable)",
    )
    for direction in ("maximize", "minimize"):
        g.add_argument(
            f"--{direction}",
            dest="objectives",
            action=_Objective,
            metavar="NAME",
            help=f"an objective to {direction}: a metric ({', '.join(METRICS)}) or a settings path (repeatable; "
            "default: --maximize val_accuracy --minimize resonators)",
        )
    g.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="NAME>=VALUE",
        help="a bound an objective must meet, e.g. 'val_accuracy>=0.9' (or 90; quote it for the shell): the search "
        "looks for the cheapest trials that meet it and the front holds only those (repeatable)",
    )
    g.add_argument("--trials", type=positive_int, default=20, help="trials the study runs in all (default: 20)")
    g.add_argument(
        "--time-budget",
        type=finite_float,
        default=None,
        metavar="MINUTES",
        help="start no trial after this many minutes (running ones finish)",
    )
    g.add_argument(
        "--study",
        default=None,
        metavar="NAME",
        help="study name; a rerun with the same name continues it "
        "(default: a name from the search, so the same command continues)",
    )
    g.add_argument("--prune", action="store_true", help="stop trials whose validation accuracy is below the median")
    g.add_argument("--workers", type=positive_int, default=1, help="worker processes sharing the study (default: 1)")
    g.add_argument("--backend", choices=BACKENDS, default="local", help="'local' processes (default) or 'ray' tasks")
    g.add_argument("--ray-address", default=None, metavar="HOST:PORT", help="Ray cluster to join (--backend ray)")
    g.add_argument("--out", default="design-results", metavar="DIR", help="output folder (default: design-results)")
    add_run_options(p)  # with --store / --no-store
    add_common(p)


def _base_config(args):
    """The settings not searched (validation split forced on), the dataset, and notes for the user."""
    recommended: dict = {}
    cfg = config_from_args(args, recommended=recommended)
    ds = load_dataset(cfg.dataset, cfg.data_dir)
    cfg = apply_sparsity(args, cfg, ds.n_inputs)
    notes = [describe_applied(recommended)]
    if cfg.validation_fraction <= 0:
        cfg = cfg.with_(validation_fraction=DEFAULT_VALIDATION_FRACTION)
        notes.append(f"trials are scored on a validation split of {DEFAULT_VALIDATION_FRACTION:g} of the training set")
    return cfg.resolved(), ds, [n for n in notes if n]


def _check_space(dims, base: dict, ds) -> None:
    """Both ends (or every choice) of each dimension make a valid run on this data (DesignSpecError if not)."""
    for d in dims:
        for raw in d.extremes():
            try:
                cfg = trial_config(base, {d.path: d.value(raw, base["model"])})
            except ValueError as exc:
                raise DesignSpecError(f"--space {d.text}: {exc}") from None
            if cfg.spec.uses_k and cfg.resonators_per_chain > ds.n_inputs:
                raise DesignSpecError(
                    f"--space {d.text}: resonators per chain can be at most {ds.n_inputs} on {ds.name}"
                )


def _plan(args, cfg, ds) -> DesignPlan:
    if args.time_budget is not None and args.time_budget <= 0:
        raise CliError(f"--time-budget must be a positive number of minutes (got {args.time_budget:g})")
    dims = parse_space(args.space, cfg.model)
    objectives = parse_objectives(args.objectives, cfg.model)
    requirements = parse_requirements(args.require, objectives)
    base = cfg.to_dict()
    _check_space(dims, base, ds)
    definition = search_definition(base, dims, objectives, requirements)
    store = run_store_of(args)
    store_url = store.url if store is not None else None
    if store is not None:
        store.close()
    return DesignPlan(
        base=base,
        dims=tuple(dims),
        objectives=tuple(objectives),
        study_name=args.study or default_study_name(definition),
        trials=args.trials,
        store_url=store_url,
        deadline=time.time() + 60 * args.time_budget if args.time_budget else None,
        prune=args.prune,
        threads=args.threads or max(1, usable_cores() // args.workers),
        definition=definition,
        requirements=tuple(requirements),
    )


def _shown(value, name: str = "") -> str:
    if name.endswith("accuracy") and isinstance(value, float):
        return f"{100 * value:.2f} %"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "+".join(str(v) for v in value) or "none"
    return str(value)


def _progress(plan: DesignPlan, bar: ProgressBar, start_count: int):
    """The per-trial line (trial n/N, its settings and objectives, best so far, ETA) and the bar."""
    started = time.perf_counter()
    first = plan.objectives[0]

    def on_trial(study, t) -> None:
        done = len(finished(study.get_trials(deepcopy=False)))
        settings = ", ".join(f"{k}={_shown(v)}" for k, v in t.user_attrs.get(ATTR_SETTINGS, {}).items())
        if t.state == TrialState.FAIL:  # not counted: another trial takes its place
            bar.write(f"trial #{t.number} failed: {settings}: {t.user_attrs.get(ATTR_ERROR, 'no reason recorded')}")
            return
        if t.values:
            outcome = ", ".join(f"{o.name} {_shown(v, o.name)}" for o, v in zip(plan.objectives, t.values))
        else:
            outcome = "pruned (validation accuracy below the median)"
        best = [s.values[0] for s in study.best_trials]
        top = (max(best) if first.direction == "maximize" else min(best)) if best else None
        best_text = f"best {first.name} {_shown(top, first.name)}, " if best else ""
        ran = max(1, done - start_count)
        eta = (time.perf_counter() - started) / ran * max(0, plan.trials - done)
        bar.write(
            f"trial {done}/{plan.trials} (#{t.number}): {settings} -> {outcome} | {best_text}"
            f"front {len(best)} | ETA {eta / 60:.1f} min"
        )
        bar.update(1, postfix=best_text.rstrip(", "))

    return on_trial


def _search(args, plan: DesignPlan, ds, networks: dict):
    study = open_study(plan)
    already = len(finished(study.get_trials(deepcopy=False)))
    where = f"run store {plan.store_url}" if plan.store_url else "memory (--no-store: it cannot be continued)"
    info(
        f"design study {plan.study_name} in {where}: {already} of {plan.trials} trials finished; searching "
        f"{', '.join(d.text for d in plan.dims)}; objectives {', '.join(o.describe() for o in plan.objectives)}"
    )
    token = CancelToken()
    with (
        cancel_on_sigint(token),
        ProgressBar(plan.trials, desc="design", unit="trial", initial=already, quiet=args.quiet) as bar,
    ):
        try:
            run_design(
                plan,
                workers=args.workers,
                backend=args.backend,
                ray_address=args.ray_address,
                dataset=ds,
                cancel=token,
                on_trial=_progress(plan, bar, already),
                study=study,
                networks=networks,
            )
        except RunCancelled:
            done = len(finished(study.get_trials(deepcopy=False)))
            info(f"{done} of {plan.trials} trials finished; run the same command (--study {plan.study_name}) to go on")
            raise Interrupted from None
    return study


def _report(args, plan: DesignPlan, study, rows: list, out_dir: Path) -> None:
    counts = trial_counts(study)
    if counts["finished"] < plan.trials:
        why = "the time budget ended the search" if plan.deadline is not None else "the search stopped"
        info(f"{why} after {counts['finished']} of {plan.trials} trials")
    info(f"wrote {out_dir / 'pareto.csv'}, pareto.json, pareto.png and {len(rows)} front topology file(s)")
    cols = [d.path for d in plan.dims]
    cols += [o.name for o in plan.objectives if o.name not in cols]
    if args.json:
        front = [
            {
                "trial": r["trial"],
                **{c: r.get(c) for c in cols},
                "test_accuracy": r["test_accuracy"],
                "topology": str(out_dir / r["topology"]),
            }
            for r in rows
        ]
        doc = {"study": plan.study_name, "trials": counts, "out": str(out_dir), "front": front}
        print(json.dumps(json_safe(doc)), flush=True)  # (an unlimited setting's infinity is null)
        return
    print("trial  " + "  ".join(cols) + "  test_accuracy")
    for r in rows:
        print(
            f"{r['trial']:5d}  " + "  ".join(_shown(r.get(c), c) for c in cols) + f"  {100 * r['test_accuracy']:.2f} %"
        )


def cmd_design(args) -> int:
    set_threads(args.threads or usable_cores())
    if not args.space:
        raise CliError(
            "design needs at least one --space PATH=SPEC to search, e.g. --space device.tuning_bits=4:12:int"
        )
    out_dir = output_folder(args.out)
    cfg, ds, notes = _base_config(args)
    try:
        plan = _plan(args, cfg, ds)
    except DesignSpecError as exc:
        raise CliError(str(exc)) from None
    for line in notes:
        info(line)
    networks: dict = {}
    study = _search(args, plan, ds, networks)
    if not trial_counts(study)["complete"]:
        raise CliError(f"no trial of {plan.study_name} completed, so there is no front (see the trial lines above)")
    rows = front_rows(study, plan, ds, networks, say=info)
    if not rows and plan.requirements:
        info(
            f"no trial of {plan.study_name} met {', '.join(r.describe() for r in plan.requirements)} yet: the front "
            "is empty (run more trials with the same command, or loosen --require)"
        )
    write_front(out_dir, study, plan, rows)
    _report(args, plan, study, rows, out_dir)
    return EXIT_OK
