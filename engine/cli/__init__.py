"""rfexplorer-cli: train, sweep, export and evaluate RF spintronic perceptrons and sparse baselines headless.

Examples::

    rfexplorer-cli data fetch mnist                                # full MNIST into the per-user data folder
    rfexplorer-cli data list                                       # which datasets are present, and where
    rfexplorer-cli train --model rf --resonators-per-chain 10 --dataset mnist --json
    rfexplorer-cli train --model rigl --sparsity 98.72 --epochs 5 --export rigl.json
    rfexplorer-cli export rf.json --model rf-input -K 10          # train, then write rf.json and rf.csv
    rfexplorer-cli export --from rf.json lab.csv                   # re-export an existing file's CSV
    rfexplorer-cli evaluate rf.json
    rfexplorer-cli sweep --quick --out results/quick
    rfexplorer-cli train --config run.toml --set plasticity.interval_steps=50 --set model_params.initial_gain=0.5
    rfexplorer-cli models                                          # the registered models
    rfexplorer-cli design --space device.tuning_bits=4:12:int --maximize val_accuracy --minimize device.tuning_bits
    rfexplorer-cli runs list --where model=rf-input                # the recorded runs (engine.io.store)

Settings: every run setting lives in one typed tree (engine.config.run_config.RunConfig). ``--config FILE`` reads a TOML
file of that tree, the named options below change single fields, and ``--set path.to.field=value``
(repeatable) changes any field, typed from its declaration; later sources win.

Exit status: 0 on success, 2 on wrong input (unknown model or dataset, K out of range, missing data,
unreadable or malformed file, diverged training, an output that cannot be written), 130 when interrupted
(Ctrl-C), 143 when terminated (SIGTERM), 1 for ``evaluate --check`` when the accuracy differs from the recorded
one. Both signals stop a run at its next batch and keep what is finished; no temporary file is left behind.
Human progress goes to stderr; with ``--json`` the last line of stdout is one JSON object.

The package holds one module per command or group: train (train, export, evaluate), sweep, robustness,
hardware_study, data, design, doctor, models and runs; run_options (the run-setting options and the RunConfig they
build) and common (exit statuses, errors, messages, option values, Ctrl-C and SIGTERM).
"""

from __future__ import annotations

import signal
import sys
from typing import Optional, Sequence

from engine.cli import data, design, doctor, hardware_study, models, robustness, runs, sweep, train
from engine.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    PROG,
    STOP_SIGNAL,
    CliError,
    Interrupted,
    Parser,
    err,
    info,
    signals_as_interrupt,
)
from engine.cli.run_options import config_from_args
from engine.core.progress import DivergenceError
from engine.data.dataset import DataNotFoundError

__all__ = [
    "COMMANDS",
    "EXIT_INTERRUPTED",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "PROG",
    "CliError",
    "Interrupted",
    "build_parser",
    "config_from_args",
    "main",
]

#: command name -> function(args) -> exit status.
COMMANDS = {
    "train": train.cmd_train,
    "export": train.cmd_export,
    "evaluate": train.cmd_evaluate,
    "sweep": sweep.cmd_sweep,
    "models": models.cmd_models,
    "doctor": doctor.cmd_doctor,
    "robustness": robustness.cmd_robustness,
    "hardware-study": hardware_study.cmd_hardware_study,
    "data": data.cmd_data,
    "design": design.cmd_design,
    "runs": runs.cmd_runs,
}


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Train, sweep, export and evaluate RF spintronic perceptrons and sparse baselines (headless).",
        epilog="Run '%(prog)s COMMAND --help' for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    train.add_parsers(sub)  # train, export
    models.add_parser(sub)
    doctor.add_parser(sub)
    train.add_evaluate_parser(sub)
    sweep.add_parser(sub)
    robustness.add_parser(sub)
    hardware_study.add_parser(sub)
    data.add_parser(sub)
    design.add_parser(sub)
    runs.add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``rfexplorer-cli``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already reported)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with signals_as_interrupt():
            return COMMANDS[args.command](args)
    except (Interrupted, KeyboardInterrupt):
        if STOP_SIGNAL["signum"] == signal.SIGTERM:
            info("terminated")
            return EXIT_TERMINATED
        info("interrupted")
        return EXIT_INTERRUPTED
    except (CliError, DataNotFoundError, DivergenceError, ValueError) as exc:  # ValueError: a bad file or setting
        err(str(exc))
    except OSError as exc:  # a file that cannot be written or read
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        err(f"{exc.strerror or exc}{where}")
    return EXIT_USAGE
