"""``hardware-study``: what an RF chip needs (engine.experiments.hardware_study): rf and rf-input trained and
evaluated at
every level of tuning range, tuning bits, frequency jitter and fabrication spread, for the three training
regimes; resumable from rows.jsonl."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Optional

from engine.cli.common import (
    EXIT_OK,
    CliError,
    Interrupted,
    add_data_options,
    add_quiet,
    add_store_options,
    cancel_on_sigint,
    csv_list,
    info,
    model_name,
    nonneg_int,
    output_folder,
    positive_int,
    run_store_of,
    set_threads,
    usable_cores,
)
from engine.config.models import get_spec
from engine.core.progress import CancelToken
from engine.core.progress_bar import ProgressBar
from engine.experiments.hardware_study import ROWS_FILE, StudySpec, run_study


def add_parser(sub) -> None:
    p = sub.add_parser(
        "hardware-study",
        help="what an RF chip needs: accuracy against tuning range, bits, jitter "
        "and spread, for the three training regimes",
        description="The README's hardware study (make reproduce-hardware): rf and rf-input at K = 10 "
        "trained and evaluated at every level of tuning range, tuning bits, frequency "
        "jitter (ideal and aware) and uncalibrated fabrication spread (ideal, aware and "
        "in-situ). Writes rows.jsonl (resumable), hardware.json, hardware.csv and "
        "hardware_tables.md into --out.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="mnist-mini, 3 epochs, seeds 0,1 and fewer levels (minutes; for trying it out)",
    )
    p.add_argument("--out", default="hardware-results", metavar="DIR", help="output folder (default: hardware-results)")
    add_data_options(p, "dataset (default: mnist; --quick: mnist-mini)")
    p.add_argument(
        "--models",
        type=csv_list(model_name),
        default=None,
        metavar="LIST",
        help="comma-separated RF models (default: rf,rf-input)",
    )
    p.add_argument("--seeds", type=csv_list(nonneg_int), default=None, metavar="LIST", help="comma-separated seeds")
    p.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default 10; --quick: 3)")
    p.add_argument("--workers", type=positive_int, default=None, help="worker processes (default: usable cores)")
    p.add_argument("--json", action="store_true", help="make the last line of stdout one JSON object")
    add_quiet(p)
    add_store_options(p)


def _study_spec(args) -> StudySpec:
    spec = StudySpec.quick() if args.quick else StudySpec()
    changes: dict = {"workers": args.workers or usable_cores()}
    if args.dataset:
        changes["dataset"] = args.dataset
    if args.data_dir is not None:
        changes["data_dir"] = args.data_dir
    if args.models:
        for m in args.models:
            if not get_spec(m).is_rf:
                raise CliError(f"the hardware study needs RF models ({m} has no resonators)")
        changes["models"] = tuple(dict.fromkeys(args.models))
    if args.seeds is not None:
        changes["seeds"] = tuple(dict.fromkeys(args.seeds))
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    return replace(spec, **changes)


class _Progress:
    """One line (or a progress bar step) per finished run; a note when resuming."""

    def __init__(self, total: int, quiet: bool, rows_path) -> None:
        self.n, self.total, self.quiet, self.rows_path = 0, total, quiet, rows_path
        self.bar: Optional[ProgressBar] = None

    def on_plan(self, total: int, done: int) -> None:
        self.n, self.total = done, total
        if done:
            info(f"resuming: {done} of {total} runs already done in {self.rows_path}")
        self.bar = ProgressBar(total, desc="hardware study", unit="run", initial=done, quiet=self.quiet)

    def on_result(self, row: dict) -> None:
        self.n += 1
        acc = row.get("test_accuracy")
        status = f"{100 * acc:6.2f} %" if acc is not None else f"FAILED: {row.get('error')}"
        what = f"{row['model']:<9} {row['part']:<15} {row['level']!s:<7} seed {row['seed']}"
        if self.bar is not None and self.bar.enabled:
            self.bar.update(1, postfix=f"{what}: {status.strip()}")
        else:
            info(
                f"[{self.n:>{len(str(self.total))}}/{self.total}] {what}  {status}  "
                f"{float(row.get('train_seconds') or 0.0):.1f} s"
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_hardware_study(args) -> int:
    spec = _study_spec(args)
    n_jobs = len(spec.jobs())
    set_threads(1)
    out_dir = output_folder(args.out)
    info(
        f"hardware study: {n_jobs} training runs ({', '.join(spec.models)}, K = {spec.resonators_per_chain}, "
        f"seeds {', '.join(map(str, spec.seeds))}) on {spec.dataset}, {spec.epochs} epoch(s), "
        f"{min(spec.workers, n_jobs)} worker(s); rows go to {out_dir / ROWS_FILE} as they finish"
    )
    start = time.perf_counter()
    progress = _Progress(n_jobs, args.quiet, out_dir / ROWS_FILE)
    token = CancelToken()
    with cancel_on_sigint(token):
        try:
            doc = run_study(
                spec,
                out_dir=out_dir,
                on_result=progress.on_result,
                cancel=token,
                on_plan=progress.on_plan,
                store=run_store_of(args),  # each finished training run recorded (--no-store: None)
            )
        finally:
            progress.close()
    elapsed = time.perf_counter() - start
    if doc["runs"]:
        info(
            f"wrote {out_dir / 'hardware.json'}, {out_dir / 'hardware.csv'}, {out_dir / 'hardware_tables.md'} "
            f"({doc['runs']} runs, {elapsed:.0f} s)"
        )
    if token.is_set():
        info(
            f"interrupted after {doc['runs']} of {n_jobs} runs" + (" (partial results written)" if doc["runs"] else "")
        )
        raise Interrupted
    if args.json:
        print(
            json.dumps(
                {
                    "out": str(out_dir),
                    "runs": doc["runs"],
                    "seconds": round(elapsed, 1),
                    "verdicts": doc["verdicts"],
                    "conclusion": doc["conclusion"],
                }
            ),
            flush=True,
        )
    else:
        print(doc["tables"] + "\n" + doc["verdict_text"], flush=True)
    return EXIT_OK
