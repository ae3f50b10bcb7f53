"""``sweep``: accuracy against % synapses removed for every model, K and seed (engine.experiments.sweep.runner), on this
machine's worker processes or on Ray, with ``--vary`` for any setting; finished runs are kept on Ctrl-C."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

from engine.cli.common import (
    EXIT_OK,
    CliError,
    Interrupted,
    add_common,
    cancel_on_sigint,
    csv_list,
    info,
    k_value,
    model_name,
    nonneg_int,
    output_folder,
    positive_int,
    run_store_of,
    set_threads,
    usable_cores,
)
from engine.cli.run_options import add_run_options, config_from_args
from engine.config.run_config import parse_override
from engine.core.progress import CancelToken
from engine.core.progress_bar import ProgressBar
from engine.experiments.sweep.ray_backend import RayUnavailableError, import_ray
from engine.experiments.sweep.runner import (
    ROWS_FILE,
    SweepSpec,
    result_paths,
    run_sweep,
    vary_variants,
    write_vary_table,
)

#: The options that replace a field of the preset SweepSpec: argparse destination = SweepSpec field.
SPEC_OPTIONS = ("models", "ks", "seeds")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="accuracy vs. %% synapses removed for every model and seed",
        description="The reference sweep (Figure 1b layout). Writes sweep.csv, sweep.json and "
        "sweep_table.md into --out.",
    )
    preset = p.add_mutually_exclusive_group()
    preset.add_argument(
        "--quick", action="store_true", help="mnist-mini, K in 1,10,100,784, seeds 0,1,2, 3 epochs (minutes)"
    )
    preset.add_argument(
        "--full", action="store_true", help="full MNIST, K in 1,3,10,30,100,392,784, seeds 0,1,2, 10 epochs (default)"
    )
    preset.add_argument(
        "--multilayer",
        action="store_true",
        help="single-layer against multilayer networks at comparable synapse counts, on --dataset "
        "mnist (default) or drones; seeds 0,1,2",
    )
    p.add_argument("--out", default="sweep-results", metavar="DIR", help="output folder (default: sweep-results)")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help=f"worker processes (default: usable cores, {usable_cores()} here)",
    )
    p.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="train every run on its own (by default the software baselines that differ only in seed and K "
        "train together as one batch, with the same results in about a quarter of the time)",
    )
    p.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="'local': this machine's worker processes (default); 'ray': one Ray task per run, on a "
        "local Ray instance (127.0.0.1 only, --workers CPUs) or the cluster at --address "
        "(needs pip install 'rfexplorer[cluster]')",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="with --backend ray: join the Ray cluster at ADDR (e.g. HEAD:6379) instead of starting a local instance",
    )
    p.add_argument(
        "--max-retries",
        type=nonneg_int,
        default=None,
        metavar="N",
        help="with --backend ray: start a run again up to N times when its worker process or node "
        "dies, then record it as failed (default 3; see docs/cluster.md)",
    )
    p.add_argument(
        "--models",
        type=csv_list(model_name),
        default=None,
        metavar="LIST",
        help="comma-separated models (default: all)",
    )
    p.add_argument(
        "--ks", type=csv_list(k_value), default=None, metavar="LIST", help="comma-separated resonators-per-chain values"
    )
    p.add_argument("--seeds", type=csv_list(nonneg_int), default=None, metavar="LIST", help="comma-separated seeds")
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="PATH=V1,V2,...",
        help="train at each value of any setting, e.g. device.freq_spread=0,0.001,0.003 (repeatable: "
        "the cross product of all --vary options); writes sweep_vary.csv, one row per value",
    )
    add_run_options(p, single=False)
    add_common(p)


def _check_backend(args) -> None:
    """--address and --max-retries need --backend ray, and Ray must be importable for it."""
    if args.address and args.backend != "ray":
        raise CliError("--address names a Ray cluster, so it needs --backend ray")
    if args.max_retries is not None and args.backend != "ray":
        raise CliError("--max-retries applies to Ray tasks, so it needs --backend ray")
    if args.backend == "ray":
        try:
            import_ray()
        except RayUnavailableError as exc:
            raise CliError(str(exc)) from None


def vary_settings(texts: Sequence[str], model: str) -> list[tuple[str, list]]:
    """``--vary path=v1,v2,...`` options -> [(path, typed values)] (CliError for a bad one)."""
    out: list[tuple[str, list]] = []
    for text in texts:
        path, sep, values = text.partition("=")
        path = path.strip()
        if not sep or not path or not values.strip():
            raise CliError(f"--vary must look like path.to.setting=v1,v2,... (got {text!r})")
        if path.startswith("model_params.") or path == "model_params":
            raise CliError(
                "a sweep trains several models, so model_params cannot be varied; train one model with 'train' instead"
            )
        if path in ("model", "seed"):
            raise CliError(f"vary {path} with --{path}s instead of --vary")
        if any(p == path for p, _ in out):
            raise CliError(f"--vary names {path} twice")
        typed = [parse_override(f"{path}={part}", model)[1] for part in values.replace(",", " ").split()]
        out.append((path, list(dict.fromkeys(typed))))
    return out


def _sweep_spec(args) -> tuple[SweepSpec, list]:
    """The preset (--quick, --full, --multilayer) with the command line's settings, models, K, seeds and
    --vary values in place; and the --vary settings."""
    if args.multilayer:
        spec = SweepSpec.multilayer(args.dataset or "mnist")
    else:
        spec = SweepSpec.quick() if args.quick else SweepSpec.full()
    if args.overrides and any(o.strip().startswith("model_params.") for o in args.overrides):
        raise CliError(
            "a sweep trains several models, so model_params cannot be set with --set; train one "
            "model with 'train' instead"
        )
    base = config_from_args(args, base=spec.base.to_dict())
    changes = {
        "base": base,
        "workers": args.workers or usable_cores(),
        "threads_per_worker": args.threads or 1,
        "batch_runs": not args.one_at_a_time,
    }
    changes.update({name: tuple(getattr(args, name)) for name in SPEC_OPTIONS if getattr(args, name) is not None})
    kept = {m: v for m, v in spec.model_settings.items() if m in changes.get("models", spec.models)}
    if args.lr is not None:  # a learning rate given on the command line applies to every model
        kept = {m: {k: x for k, x in v.items() if k != "lr"} for m, v in kept.items()}
    vary = vary_settings(args.vary or [], base.model)
    if vary:
        changes["variants"] = vary_variants(spec.variants, vary)
    return replace(spec, model_settings=kept, **changes), vary


def _describe(spec: SweepSpec, args, n_jobs: int, workers_used: int, out_dir: Path) -> str:
    sets_k = any("resonators_per_chain" in v for v in spec.variants)
    shapes = (
        f"{len(spec.variants)} setting variant(s)"
        if sets_k
        else f"K in {', '.join(map(str, spec.ks))}"
        + (f" x {len(spec.variants)} setting variants" if len(spec.variants) > 1 else "")
    )
    where = (
        f"{workers_used} worker(s)"
        if args.backend == "local"
        else f"Ray cluster at {args.address}"
        if args.address
        else f"local Ray instance with {spec.workers} CPU(s)"
    )
    return (
        f"sweep: {n_jobs} runs ({', '.join(spec.models)}; {shapes}; seeds {', '.join(map(str, spec.seeds))}) "
        f"on {spec.base.dataset}, {spec.base.epochs} epoch(s), {where}; rows go to {out_dir / ROWS_FILE} as "
        f"they finish"
    )


class _Progress:
    """One line (or a progress bar step) per finished run."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.n, self.total, self.quiet = 0, total, quiet
        self.bar: Optional[ProgressBar] = None

    def on_plan(self, total: int, done: int) -> None:
        self.n, self.total = done, total
        self.bar = ProgressBar(total, desc="sweep", unit="run", initial=done, quiet=self.quiet)

    def on_result(self, row: dict) -> None:
        self.n += 1
        acc = row.get("test_accuracy")
        status = f"{100 * acc:6.2f} %" if acc is not None else f"FAILED: {row.get('error')}"
        secs = row.get("train_seconds")
        layers = row.get("hidden") or ()
        k_text = ",".join(map(str, row.get("layer_ks") or ())) if layers else str(row["resonators_per_chain"])
        shape = f" hidden {','.join(map(str, layers))}" if layers else ""
        what = f"{row['model']:<9} K={k_text:<4}{shape} seed {row['seed']}"
        if self.bar is not None and self.bar.enabled:
            if acc is None:
                self.bar.write(f"{what}  {status}")
            self.bar.update(1, postfix=f"{row['model']} K={row['resonators_per_chain']}: {status.strip()}")
        else:
            info(
                f"[{self.n:>{len(str(self.total))}}/{self.total}] {what}  {status}"
                + (f"  {secs:.1f} s" if secs is not None else "")
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_outputs(rows: list, vary: list, out_dir: Path, elapsed: float) -> dict:
    paths = result_paths(out_dir) if rows else {}
    if paths:
        info(f"wrote {paths['csv']}, {paths['json']}, {paths['md']} ({len(rows)} runs in {elapsed:.0f} s)")
    if rows and vary:
        paths["vary"] = write_vary_table(rows, [path for path, _ in vary], out_dir)
        info(f"wrote {paths['vary']}")
    return paths


def cmd_sweep(args) -> int:
    _check_backend(args)
    spec, vary = _sweep_spec(args)
    n_jobs = len(spec.jobs())
    workers_used = min(spec.workers, n_jobs)
    # The coordinating process needs one thread; the in-process path uses --threads (default 1).
    set_threads(spec.threads_per_worker if workers_used == 1 and args.backend == "local" else 1)
    out_dir = output_folder(args.out)
    info(_describe(spec, args, n_jobs, workers_used, out_dir))
    start = time.perf_counter()
    progress = _Progress(n_jobs, args.quiet)
    token = CancelToken()
    rows: list = []
    with cancel_on_sigint(token):  # Ctrl-C and SIGTERM: finished runs are kept
        try:
            rows = run_sweep(
                spec,
                on_result=progress.on_result,
                cancel=token,
                out_dir=out_dir,
                on_note=info,
                on_plan=progress.on_plan,
                backend=args.backend,
                address=args.address,
                max_retries=args.max_retries,
                store=run_store_of(args),  # each finished run recorded as it arrives (--no-store: None)
            )
        finally:
            progress.close()
    elapsed = time.perf_counter() - start
    paths = _write_outputs(rows, vary, out_dir, elapsed)
    if token.is_set():
        info(f"interrupted after {len(rows)} of {n_jobs} runs" + (" (partial results written)" if rows else ""))
        raise Interrupted
    if args.json:
        failed = sum(r.get("error") is not None for r in rows)
        print(
            json.dumps(
                {
                    "out": str(out_dir),
                    "runs": len(rows),
                    "failed": failed,
                    "seconds": round(elapsed, 1),
                    "files": {k: str(v) for k, v in paths.items()},
                }
            ),
            flush=True,
        )
    else:
        print(Path(paths["md"]).read_text(encoding="utf-8"), end="", flush=True)
    return EXIT_OK
