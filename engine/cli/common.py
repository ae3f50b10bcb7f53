"""What every rfexplorer-cli command shares: the exit statuses and errors, messages as one sentence on stderr,
the parsers of option values, the argument parser class, torch threads, and Ctrl-C / SIGTERM handling."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import torch

from engine.config.models import list_models
from engine.config.run_config import MAX_LR
from engine.core.messages import sentence as one_line
from engine.core.sizes import parse_sizes
from engine.io.store import StoreError, open_store, store_disabled

PROG = "rfexplorer-cli"
EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_TERMINATED = 128 + 15  # SIGTERM
#: The last SIGINT or SIGTERM the running command received (its exit status says which).
STOP_SIGNAL: dict = {"signum": None}


class CliError(Exception):
    """Wrong input: printed as one sentence, exit status 2."""


class Interrupted(Exception):
    """The user pressed Ctrl-C (exit status 130) or sent SIGTERM (exit status 143)."""


# ---------------------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------------------


def sentence(msg: str) -> str:
    """``msg`` as one bounded line, capitalised (unless it starts with a setting's name) and ending in a stop."""
    msg = one_line(msg) or "unknown error"  # one line, bounded, control characters escaped
    first = msg.split(" ", 1)[0]
    if not any(c in first for c in "._"):  # a setting's name (model_params.alpha, compute_device) stays as is
        msg = msg[0].upper() + msg[1:]
    return msg if msg.endswith((".", "!", "?")) else msg + "."


def err(msg: str) -> None:
    print(f"{PROG}: error: {sentence(msg)}", file=sys.stderr, flush=True)


def info(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def set_threads(n: int) -> None:
    torch.set_num_threads(max(1, int(n)))


def output_folder(path: str) -> Path:
    """The ``--out`` folder of a command (CliError when a file is in its place)."""
    out_dir = Path(path)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"the output folder {out_dir} is a file")
    return out_dir


# ---------------------------------------------------------------------------------------------------------
# Values of options
# ---------------------------------------------------------------------------------------------------------


def int_at_least(text: str, lowest: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < lowest:
        raise argparse.ArgumentTypeError(f"must be >= {lowest}, got {v}")
    return v


def positive_int(text: str) -> int:
    return int_at_least(text, 1)


def nonneg_int(text: str) -> int:
    return int_at_least(text, 0)


def finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def learning_rate(text: str) -> float:
    v = finite_float(text)
    if not 0 < v <= MAX_LR:
        raise argparse.ArgumentTypeError(f"must be > 0 and at most {MAX_LR:g}, got {text}")
    return v


def k_value(text: str) -> int:
    return positive_int(text)  # the upper bound (N inputs) is checked against the dataset


def hidden_sizes(text: str) -> list:
    """``H1[,H2...]``: hidden layer sizes, each >= 1 (engine.core.sizes, as the app reads them)."""
    try:
        out = list(parse_sizes(text, "hidden sizes"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not out:
        raise argparse.ArgumentTypeError("expected hidden sizes like 100 or 200,100")
    return out


def csv_list(kind):
    def parse(text: str) -> list:
        out = [kind(part) for part in text.replace(",", " ").split()]
        if not out:
            raise argparse.ArgumentTypeError("expected at least one value")
        return out

    return parse


def model_name(text: str) -> str:
    if text not in list_models():
        raise argparse.ArgumentTypeError(f"unknown model {text!r} (choose from {', '.join(list_models())})")
    return text


class Parser(argparse.ArgumentParser):
    """argparse, with errors as one sentence (exit status 2, no traceback)."""

    def error(self, message: str):  # argparse.ArgumentParser.error, overridden
        self.print_usage(sys.stderr)
        err(message)
        raise SystemExit(EXIT_USAGE)


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    p.add_argument("--json", action="store_true", help="make the last line of stdout one JSON object")
    add_quiet(p)


def add_store_options(p: argparse.ArgumentParser) -> None:
    """``--store`` and ``--no-store``: where finished runs are recorded (engine.io.store), or not at all."""
    g = p.add_argument_group("run store")
    g.add_argument(
        "--store",
        default=None,
        metavar="PATH_OR_URL",
        help="record finished runs in this SQLite file or database URL (default: $RFEXPLORER_STORE, else "
        "runs.sqlite in the per-user data folder; RFEXPLORER_STORE=off records nothing); list them with "
        "'rfexplorer-cli runs list'",
    )
    g.add_argument("--no-store", action="store_true", help="do not record the runs of this command")


def run_store_of(args):
    """The run store a command records into (opened now, so a bad --store fails before any work), or None
    with --no-store (or $RFEXPLORER_STORE=off and no --store). Raises StoreError (one sentence) when it cannot be
    opened."""
    if getattr(args, "no_store", False) or (store_disabled() and not getattr(args, "store", None)):
        return None
    return open_store(getattr(args, "store", None))


def record_runs(store, results, source: str) -> list:
    """Record finished runs; a store that fails now is reported on stderr and the command goes on (its results
    are printed and written as asked). Returns the new ids."""
    if store is None:
        return []
    try:
        return store.record_many(list(results), source=source)
    except StoreError as exc:
        info(f"warning: the run was not recorded: {sentence(str(exc))}")
        return []


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar on stderr (it is drawn only when stderr is a terminal)"
    )


def add_data_options(p: argparse.ArgumentParser, dataset_help: str) -> None:
    p.add_argument("--dataset", default=None, metavar="NAME|FILE", help=dataset_help)
    p.add_argument("--data-dir", default=None, metavar="DIR", help="data folder (see train --help)")


def add_split_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--split",
        choices=("recorded", "test"),
        default="recorded",
        help="'recorded': the split the recorded accuracy was measured on (default); 'test': test set",
    )


# ---------------------------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM
# ---------------------------------------------------------------------------------------------------------


@contextmanager
def cancel_on_sigint(token):
    """First Ctrl-C (or SIGTERM) sets ``token`` (the run stops at its next batch, keeping what is finished); a
    second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        STOP_SIGNAL["signum"] = signum
        if token.is_set():
            raise KeyboardInterrupt
        token.set()
        what = "interrupted" if signum == signal.SIGINT else "terminated"
        info(f"{what}: stopping (press Ctrl-C again to stop at once)")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def signals_as_interrupt():
    """While a command runs, SIGTERM (and Ctrl-C) outside a run (loading data, writing files) stop it as an
    exception, so ``finally`` clauses remove temporary files; which one it was decides the exit status."""
    STOP_SIGNAL["signum"] = None
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        STOP_SIGNAL["signum"] = signum
        raise KeyboardInterrupt

    sigs = [signal.SIGTERM] + (
        [signal.SIGINT] if signal.getsignal(signal.SIGINT) is signal.default_int_handler else []
    )  # an ignored Ctrl-C (a background job) stays ignored
    previous = {sig: signal.signal(sig, handler) for sig in sigs}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
