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

Settings: every run setting lives in one typed tree (engine.config.RunConfig). ``--config FILE`` reads a TOML
file of that tree, the named options below change single fields, and ``--set path.to.field=value``
(repeatable) changes any field, typed from its declaration; later sources win.

Exit status: 0 on success, 2 on wrong input (unknown model or dataset, K out of range, missing data,
unreadable or malformed file, diverged training, an output that cannot be written), 130 when interrupted
(Ctrl-C), 143 when terminated (SIGTERM), 1 for ``evaluate --check`` when the accuracy differs from the recorded
one. Both signals stop a run at its next batch and keep what is finished; no temporary file is left behind.
Human progress goes to stderr; with ``--json`` the last line of stdout is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence

PROG = "rfexplorer-cli"
EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_TERMINATED = 128 + 15  # SIGTERM
#: The last SIGINT or SIGTERM the running command received (its exit status says which).
_STOP_SIGNAL: dict = {"signum": None}


class CliError(Exception):
    """Wrong input: printed as one sentence, exit status 2."""


class Interrupted(Exception):
    """The user pressed Ctrl-C (exit status 130) or sent SIGTERM (exit status 143)."""


def _sentence(msg: str) -> str:
    from .messages import sentence

    msg = sentence(msg) or "unknown error"  # one line, bounded, control characters escaped
    first = msg.split(" ", 1)[0]
    if not any(c in first for c in "._"):  # a setting's name (model_params.alpha, compute_device) stays as is
        msg = msg[0].upper() + msg[1:]
    return msg if msg.endswith((".", "!", "?")) else msg + "."


def _err(msg: str) -> None:
    print(f"{PROG}: error: {_sentence(msg)}", file=sys.stderr, flush=True)


def _info(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------------------------------------
# Argument parsing
# ---------------------------------------------------------------------------------------------------------

def _int_at_least(text: str, lowest: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < lowest:
        raise argparse.ArgumentTypeError(f"must be >= {lowest}, got {v}")
    return v


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _nonneg_int(text: str) -> int:
    return _int_at_least(text, 0)


def _finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _learning_rate(text: str) -> float:
    from .config import MAX_LR

    v = _finite_float(text)
    if not 0 < v <= MAX_LR:
        raise argparse.ArgumentTypeError(f"must be > 0 and at most {MAX_LR:g}, got {text}")
    return v


def _k_value(text: str) -> int:
    return _positive_int(text)  # the upper bound (N inputs) is checked against the dataset


def _hidden_sizes(text: str) -> list:
    """``H1[,H2...]``: hidden layer sizes, each >= 1."""
    out = []
    for part in text.replace(",", " ").split():
        try:
            v = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"hidden sizes must be whole numbers, got {part!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"a hidden layer needs at least 1 neuron, got {v}")
        out.append(v)
    if not out:
        raise argparse.ArgumentTypeError("expected hidden sizes like 100 or 200,100")
    return out


def _csv_list(kind):
    def parse(text: str) -> list:
        out = []
        for part in text.replace(",", " ").split():
            out.append(kind(part))
        if not out:
            raise argparse.ArgumentTypeError("expected at least one value")
        return out
    return parse


def _model_name(text: str) -> str:
    from .models import list_models

    if text not in list_models():
        raise argparse.ArgumentTypeError(f"unknown model {text!r} (choose from {', '.join(list_models())})")
    return text


class _Parser(argparse.ArgumentParser):
    """argparse, with errors as one sentence (exit status 2, no traceback)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.print_usage(sys.stderr)
        _err(message)
        raise SystemExit(EXIT_USAGE)


def _add_run_options(p: argparse.ArgumentParser, *, single: bool = True) -> None:
    from .config import BUDGETS
    from .data import DATASET_NAMES
    from .models import list_models
    from .physics import FREQUENCY_PLANS, PARITIES

    s = p.add_argument_group("settings")
    s.add_argument("--config", default=None, metavar="FILE.toml",
                   help="read run settings from a TOML file (the engine.config.RunConfig tree)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="set one setting, e.g. plasticity.interval_steps=50 or device.alpha=0.004 "
                        "(repeatable; applied last)")
    g = p.add_argument_group("run")
    if single:
        g.add_argument("--model", choices=list_models(), default=None, help="model to train (default: rf)")
        k = g.add_mutually_exclusive_group()
        k.add_argument("-K", "--resonators-per-chain", dest="k", type=_csv_list(_k_value), default=None,
                       metavar="K",
                       help="resonators per chain = weights per class, 1..N inputs (default: 10); with "
                            "--hidden, one value per layer (-K 30,100) or one for all")
        k.add_argument("--sparsity", type=_finite_float, default=None, metavar="PCT",
                       help="percentage of synapses removed, 0..100, converted to the nearest K")
    from .physics import HARDWARE_REGIMES

    g.add_argument("--hardware", choices=HARDWARE_REGIMES, default=None,
                   help="how RF training meets device spreads and noise: 'ideal' (nominal device, deployed to a "
                        "new chip), 'aware' (a fresh chip and noise every batch), 'in-situ' (one chip; default)")
    g.add_argument("--hidden", type=_hidden_sizes, default=None, metavar="H1[,H2...]",
                   help="hidden layers of H chains each, driving STNO neurons (RF) or ReLU units (baselines)")
    g.add_argument("--dataset", default=None, metavar="NAME|FILE",
                   help=f"a dataset name ({', '.join(DATASET_NAMES)}) or a .npz/.csv/.h5 file "
                        "(default: mnist-mini)")
    g.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder holding MNIST/, FashionMNIST/, KMNIST/ in torchvision's layout "
                        "(default: $RFEXPLORER_DATA or ~/.local/share/rfexplorer/data)")
    g.add_argument("--epochs", type=_positive_int, default=None, help="training epochs")
    g.add_argument("--batch-size", type=_positive_int, default=None, help="mini-batch size (default: 100)")
    g.add_argument("--lr", type=_learning_rate, default=None, help="learning rate (default: the model's tuned one)")
    if single:
        g.add_argument("--seed", type=_nonneg_int, default=None, help="random seed (default: 0)")
    g.add_argument("--budget", choices=BUDGETS, default=None,
                   help="sparse baselines: K weights per class ('per-output') or K*C anywhere ('global')")
    g.add_argument("--device", dest="compute_device", choices=("auto", "cpu", "cuda"), default=None,
                   help="where tensors live: cpu (default), cuda (a GPU) or auto (the GPU when there is one)")
    g.add_argument("--validation-fraction", type=_finite_float, default=None, metavar="F",
                   help="hold out this fraction of the training set and report accuracy on it, not on the test set")
    d = p.add_argument_group("device")
    d.add_argument("--alpha", type=_finite_float, default=None, help="Gilbert damping (linewidth = alpha f)")
    d.add_argument("--phi", type=_finite_float, default=None, help="lineshape phase in rad (0 = antisymmetric)")
    d.add_argument("--f-min", type=_finite_float, default=None, metavar="GHZ", help="first input frequency (GHz)")
    d.add_argument("--f-max", type=_finite_float, default=None, metavar="GHZ", help="last input frequency (GHz)")
    d.add_argument("--plan", choices=FREQUENCY_PLANS, default=None, help="input frequency plan")
    d.add_argument("--parity", choices=PARITIES, default=None, help="chain sign convention")
    d.add_argument("--alpha-dtod", type=_finite_float, default=None, metavar="REL",
                   help="device-to-device spread of the resonators' damping (relative std)")
    d.add_argument("--k-sd-dtod", type=_finite_float, default=None, metavar="REL",
                   help="device-to-device spread of the resonators' K_SD (relative std)")
    d.add_argument("--readout-noise", type=_finite_float, default=None, metavar="V",
                   help="std of the noise added to each chain voltage at every read-out")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_positive_int, default=None, help="torch threads")
    p.add_argument("--json", action="store_true", help="make the last line of stdout one JSON object")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar on stderr (it is drawn only when stderr is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Train, sweep, export and evaluate RF spintronic perceptrons "
                                            "and sparse baselines (headless).",
                     epilog="Run '%(prog)s COMMAND --help' for a command's options.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("train", help="train one model and print its test accuracy",
                       description="Train one model; one line per epoch on stderr.")
    _add_run_options(p)
    p.add_argument("--export", default=None, metavar="FILE",
                   help="write the trained topology to FILE (JSON) and FILE with a .csv suffix")
    _add_common(p)

    p = sub.add_parser("export", help="train then export a topology, or re-export a topology file to CSV",
                       description="Train a model and write OUTPUT (JSON) plus OUTPUT.csv, or with --from, "
                                   "write the CSV of an existing topology file (to OUTPUT, default: next to it).")
    p.add_argument("output", nargs="?", default=None, metavar="OUTPUT",
                   help="JSON file to write (training), or CSV file to write (--from)")
    p.add_argument("--from", dest="source", default=None, metavar="TOPOLOGY",
                   help="an existing topology JSON file to re-export instead of training")
    _add_run_options(p)
    _add_common(p)

    p = sub.add_parser("models", help="list the registered models",
                       description="The registered models: name, family, whether K applies, default learning "
                                   "rate.")
    _add_common(p)

    p = sub.add_parser("doctor", help="check this machine: Python, torch, BLAS, GPU, datasets, Ray, h5py",
                       description="A checklist on stdout; exit status 1 when something needed is missing.")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="where MNIST-family data is looked for")
    p.add_argument("--json", action="store_true", help="make the last line of stdout one JSON object")

    p = sub.add_parser("evaluate", help="evaluate a topology file and compare with its recorded accuracy",
                       description="Rebuild the network of a topology file and measure its accuracy.")
    p.add_argument("file", metavar="FILE", help="topology JSON file (written by train --export or export)")
    p.add_argument("--dataset", default=None, metavar="NAME|FILE", help="dataset (default: the recorded one)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="data folder (see train --help)")
    p.add_argument("--split", choices=("recorded", "test"), default="recorded",
                   help="'recorded': the split the recorded accuracy was measured on (default); 'test': test set")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 if the accuracy differs from the recorded one")
    _add_common(p)

    p = sub.add_parser("sweep", help="accuracy vs. %% synapses removed for every model and seed",
                       description="The reference sweep (Figure 1b layout). Writes sweep.csv, sweep.json and "
                                   "sweep_table.md into --out.")
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true",
                        help="mnist-mini, K in 1,10,100,784, seeds 0,1,2, 3 epochs (minutes)")
    preset.add_argument("--full", action="store_true",
                        help="full MNIST, K in 1,3,10,30,100,392,784, seeds 0,1,2, 10 epochs (default)")
    preset.add_argument("--multilayer", action="store_true",
                        help="single-layer against multilayer networks at comparable synapse counts, on --dataset "
                             "mnist (default) or drones; seeds 0,1,2")
    p.add_argument("--out", default="sweep-results", metavar="DIR", help="output folder (default: sweep-results)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help=f"worker processes (default: usable cores, {_usable_cores()} here)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="'local': this machine's worker processes (default); 'ray': one Ray task per run, on a "
                        "local Ray instance (127.0.0.1 only, --workers CPUs) or the cluster at --address "
                        "(needs pip install 'rfexplorer[cluster]')")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --backend ray: join the Ray cluster at ADDR (e.g. HEAD:6379) instead of starting "
                        "a local instance")
    p.add_argument("--max-retries", type=_nonneg_int, default=None, metavar="N",
                   help="with --backend ray: start a run again up to N times when its worker process or node "
                        "dies, then record it as failed (default 3; see docs/cluster.md)")
    p.add_argument("--models", type=_csv_list(_model_name), default=None, metavar="LIST",
                   help="comma-separated models (default: all)")
    p.add_argument("--ks", type=_csv_list(_k_value), default=None, metavar="LIST",
                   help="comma-separated resonators-per-chain values")
    p.add_argument("--seeds", type=_csv_list(_nonneg_int), default=None, metavar="LIST",
                   help="comma-separated seeds")
    p.add_argument("--vary", action="append", default=[], metavar="PATH=V1,V2,...",
                   help="train at each value of any setting, e.g. device.freq_spread=0,0.001,0.003 (repeatable: "
                        "the cross product of all --vary options); writes sweep_vary.csv, one row per value")
    _add_run_options(p, single=False)
    _add_common(p)

    p = sub.add_parser("robustness", help="accuracy of a trained RF topology on fresh chips as a device knob varies",
                       description="Evaluate the network of a topology file on --repeats fresh chips and noise draws "
                                   "at each value of one device setting; writes robustness.csv, robustness.json and "
                                   "robustness.png into --out. The last line of stdout is a JSON object whose 'rows' "
                                   "hold knob, value, mean, std and n for every value.")
    p.add_argument("file", metavar="TOPOLOGY", help="topology JSON file of an RF network")
    p.add_argument("--knob", required=True, metavar="NAME",
                   help="the device setting to vary: freq_spread, calibrated, tuning_bits, freq_jitter_lw, "
                        "power_noise, readout_noise_v, alpha_dtod or k_sd_dtod (device. prefix optional)")
    p.add_argument("--values", required=True, metavar="V1,V2,...", help="comma-separated values of the knob")
    p.add_argument("--repeats", type=_positive_int, default=5, help="fresh chips / noise draws per value (default 5)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="repeat r draws from seed + r (default 0)")
    p.add_argument("--out", default="robustness-results", metavar="DIR",
                   help="output folder (default: robustness-results)")
    p.add_argument("--dataset", default=None, metavar="NAME|FILE", help="dataset (default: the recorded one)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="data folder (see train --help)")
    p.add_argument("--split", choices=("recorded", "test"), default="recorded",
                   help="'recorded': the split the recorded accuracy was measured on (default); 'test': test set")
    p.add_argument("--no-figure", action="store_true", help="do not draw robustness.png")
    p.add_argument("--threads", type=_positive_int, default=None, help="torch threads")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar on stderr (it is drawn only when stderr is a terminal)")

    p = sub.add_parser("hardware-study", help="what an RF chip needs: accuracy against tuning range, bits, jitter "
                                              "and spread, for the three training regimes",
                       description="The README's hardware study (make reproduce-hardware): rf and rf-input at K = 10 "
                                   "trained and evaluated at every level of tuning range, tuning bits, frequency "
                                   "jitter (ideal and aware) and uncalibrated fabrication spread (ideal, aware and "
                                   "in-situ). Writes rows.jsonl (resumable), hardware.json, hardware.csv and "
                                   "hardware_tables.md into --out.")
    p.add_argument("--quick", action="store_true",
                   help="mnist-mini, 3 epochs, seeds 0,1 and fewer levels (minutes; for trying it out)")
    p.add_argument("--out", default="hardware-results", metavar="DIR", help="output folder (default: hardware-results)")
    p.add_argument("--dataset", default=None, metavar="NAME|FILE", help="dataset (default: mnist; --quick: mnist-mini)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="data folder (see train --help)")
    p.add_argument("--models", type=_csv_list(_model_name), default=None, metavar="LIST",
                   help="comma-separated RF models (default: rf,rf-input)")
    p.add_argument("--seeds", type=_csv_list(_nonneg_int), default=None, metavar="LIST", help="comma-separated seeds")
    p.add_argument("--epochs", type=_positive_int, default=None, help="training epochs (default 10; --quick: 3)")
    p.add_argument("--workers", type=_positive_int, default=None, help="worker processes (default: usable cores)")
    p.add_argument("--json", action="store_true", help="make the last line of stdout one JSON object")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar on stderr (it is drawn only when stderr is a terminal)")
    _add_data_parser(sub)
    return parser


def _add_data_parser(sub) -> None:
    """``data fetch NAME`` and ``data list`` (engine.fetch)."""
    from .data import TORCHVISION_DATASETS

    p = sub.add_parser("data", help="get the full MNIST, Fashion-MNIST or KMNIST, and see which datasets are present",
                       description="'data fetch NAME' downloads and verifies a dataset's four files into the data "
                                   "folder (torchvision's layout); 'data list' shows which datasets are present and "
                                   "where.")
    actions = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser)
    f = actions.add_parser("fetch", help="download a dataset into the data folder (resumes; verifies every file)",
                           description="Download NAME's four IDX files, check their size, header and checksum, "
                                       "and put them in DIR/<MNIST|FashionMNIST|KMNIST>/raw.")
    f.add_argument("name", choices=tuple(TORCHVISION_DATASETS), metavar="NAME",
                   help=f"one of {', '.join(TORCHVISION_DATASETS)}")
    f.add_argument("--mirror", action="append", default=[], metavar="URL",
                   help="a URL prefix to download from, tried in order (repeatable; default: $RFEXPLORER_MIRRORS, "
                        "space or comma separated, else the mirrors torchvision lists)")
    f.add_argument("--json", action="store_true", help="make the last line of stdout one JSON object")
    f.add_argument("--quiet", action="store_true", help="no progress on stderr")
    w = actions.add_parser("list", aliases=["where"], help="which datasets are present, and where",
                           description="The data folder and, for every named dataset, whether it is present.")
    w.add_argument("--verify", action="store_true", help="also check the files' checksums (slower)")
    w.add_argument("--json", action="store_true", help="make the last line of stdout one JSON object")
    for q in (f, w):
        q.add_argument("--data-dir", default=None, metavar="DIR",
                       help="the data folder (default: $RFEXPLORER_DATA, else the per-user data folder)")


# ---------------------------------------------------------------------------------------------------------
# Building configs
# ---------------------------------------------------------------------------------------------------------

_DEVICE_FLAGS = {"alpha": "alpha", "phi": "phi", "f_min": "f_min_ghz", "f_max": "f_max_ghz", "plan": "plan",
                 "parity": "parity", "alpha_dtod": "alpha_dtod", "k_sd_dtod": "k_sd_dtod",
                 "readout_noise": "readout_noise_v"}
_RUN_FLAGS = ("model", "dataset", "data_dir", "epochs", "batch_size", "lr", "seed", "budget", "validation_fraction",
              "compute_device", "hardware")


def _flag_changes(args) -> dict:
    """The settings given as named options, as {dotted path: value}."""
    changes = {name: getattr(args, name) for name in _RUN_FLAGS if getattr(args, name, None) is not None}
    changes.update({f"device.{field}": getattr(args, name) for name, field in _DEVICE_FLAGS.items()
                    if getattr(args, name, None) is not None})
    if getattr(args, "k", None) is not None:
        changes["resonators_per_chain"] = args.k[0]
        changes["layer_resonators"] = tuple(args.k[1:])
    if getattr(args, "hidden", None) is not None:
        changes["hidden"] = tuple(args.hidden)
    return changes


def config_from_args(args, base: Optional[dict] = None, recommended: Optional[dict] = None):
    """The RunConfig of a command: ``base`` (a preset), then --config, then named options, then --set.
    Given a ``recommended`` dict, epochs, batch size and learning rate left unset come from the dataset's
    recommendation (engine.recommended) and the dict receives its record. Raises SettingError / ValueError
    with the reason when a setting is invalid."""
    from .config import build_config, load_toml
    from .settings_tree import set_path

    mapping = dict(base or {})
    if getattr(args, "config", None):
        for key, value in load_toml(args.config).items():
            mapping[key] = value
    for key, value in _flag_changes(args).items():
        mapping = set_path(mapping, key, value)
    overrides = getattr(args, "overrides", []) or []
    if recommended is not None:
        from .config import apply_overrides
        from .recommended import fill_recommended

        mapping, record = fill_recommended(apply_overrides(mapping, overrides))  # (what the user set is kept)
        recommended.update(record)
        overrides = []
    return build_config(None, overrides, base=mapping)


def _apply_sparsity(args, cfg, n_inputs: int):
    """K from --sparsity (needs the dataset's N); a note when the model does not use K."""
    from .config import k_from_removed_pct

    if getattr(args, "sparsity", None) is not None:
        k = k_from_removed_pct(args.sparsity, n_inputs)
        _info(f"sparsity {args.sparsity:g} % removed -> {k} resonators per chain")
        cfg = cfg.with_(resonators_per_chain=k)
    if not cfg.spec.uses_k and (getattr(args, "k", None) is not None or getattr(args, "sparsity", None) is not None):
        _info(f"note: {cfg.spec.label} uses all {n_inputs} weights per class; K is ignored")
    return cfg


# ---------------------------------------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------------------------------------

@contextmanager
def _cancel_on_sigint(token):
    """First Ctrl-C (or SIGTERM) sets ``token`` (the run stops at its next batch, keeping what is finished); a
    second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _STOP_SIGNAL["signum"] = signum
        if token.is_set():
            raise KeyboardInterrupt
        token.set()
        what = "interrupted" if signum == signal.SIGINT else "terminated"
        _info(f"{what}: stopping (press Ctrl-C again to stop at once)")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def _signals_as_interrupt():
    """While a command runs, SIGTERM (and Ctrl-C) outside a run (loading data, writing files) stop it as an
    exception, so ``finally`` clauses remove temporary files; which one it was decides the exit status."""
    _STOP_SIGNAL["signum"] = None
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _STOP_SIGNAL["signum"] = signum
        raise KeyboardInterrupt

    sigs = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is signal.default_int_handler
                               else [])  # an ignored Ctrl-C (a background job) stays ignored
    previous = {sig: signal.signal(sig, handler) for sig in sigs}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------

def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(n)))


def _epoch_printer(cfg, bar=None):
    state = {"epochs": 0}
    label = "val" if cfg.validation_fraction > 0 else "test"
    say = bar.write if bar is not None else _info

    def progress(snap) -> None:
        if len(snap.history) > state["epochs"]:
            new = snap.history[state["epochs"]:]
            for epoch, loss, train_acc, test_acc in new:
                say(f"epoch {epoch}/{snap.epochs}  loss {loss:.4f}  train {100 * train_acc:.2f} %  "
                    f"{label} {100 * test_acc:.2f} %  {snap.elapsed_s:.1f} s")
            state["epochs"] = len(snap.history)
            if bar is not None:
                _, loss, _, test_acc = new[-1]
                bar.update(len(new), postfix=f"loss {loss:.4f}, {label} {100 * test_acc:.2f} %")
    return progress


def _train(args):
    """Train as configured by ``args``; returns the RunResult (raises Interrupted if cancelled)."""
    from .config import remaining_synapses_pct
    from .data import load_dataset
    from .progress import CancelToken
    from .progress_bar import ProgressBar
    from .training import run_training

    args.recommended = {}  # (recorded by --json)
    cfg = config_from_args(args, recommended=args.recommended)
    ds = load_dataset(cfg.dataset, cfg.data_dir)
    cfg = _apply_sparsity(args, cfg, ds.n_inputs)
    from .recommended import describe_applied, plasticity_note

    for line in (describe_applied(args.recommended), plasticity_note(cfg, len(ds.train_y))):
        if line:
            _info(line)
    k = cfg.resonators_per_chain if cfg.spec.uses_k else ds.n_inputs
    if cfg.hidden:
        shape = "-".join(str(n) for n in (ds.n_inputs, *cfg.hidden, ds.n_classes))
        ks = ",".join(str(v) for v in cfg.layer_ks) if cfg.spec.uses_k else "all"
        _info(f"{ds.describe()}; model {cfg.model}, layers {shape}, K = {ks}, {cfg.epochs} epoch(s), "
              f"seed {cfg.seed}")
    else:
        _info(f"{ds.describe()}; model {cfg.model}, K = {k} "
              f"({remaining_synapses_pct(k, ds.n_inputs):.2f} % of synapses), "
              f"{cfg.epochs} epoch(s), seed {cfg.seed}")
    token = CancelToken()
    with _cancel_on_sigint(token), ProgressBar(cfg.epochs, desc="train", unit="epoch",
                                               quiet=getattr(args, "quiet", False)) as bar:
        # epoch lines only: no mid-epoch snapshots (they copy W and the attachments, which costs at large K)
        result = run_training(cfg, dataset=ds, progress=_epoch_printer(cfg, bar), cancel=token,
                              snapshot_interval_s=float("inf"))
    if result.cancelled:
        raise Interrupted
    return result


def _export_paths(path: str) -> tuple[Path, Path]:
    from .topology import csv_path_for

    p = Path(path)
    if p.suffix.lower() == ".csv":
        raise CliError(f"the export file {p} must be the JSON file, not the .csv (the CSV is written next to it)")
    from .files import check_output_file

    # before training: an existing folder where files can be created, a usable name, not a folder nor a symbolic
    # link (OutputPathError, one sentence)
    return check_output_file(p, what="export file"), check_output_file(csv_path_for(p), what="export CSV")


def _report_train(args, result, exported: Optional[tuple] = None) -> None:
    s = result.summary()
    where = "validation" if result.evaluated_on == "validation" else "test"
    if result.config.hidden:
        shape = "-".join(str(n) for n in (result.n_inputs, *result.config.hidden, result.n_classes))
        _info(f"{s['model']} {shape} ({result.synapses} synapses): "
              f"{where} accuracy {100 * result.test_accuracy:.2f} % in {result.train_seconds:.1f} s")
    else:
        _info(f"{s['model']} K={s['resonators_per_chain']} ({s['remaining_synapses_pct']:.2f} % of synapses): "
              f"{where} accuracy {100 * result.test_accuracy:.2f} % in {result.train_seconds:.1f} s")
    if exported:
        _info(f"wrote {exported[0]}" + (f" and {exported[1]}" if exported[1] else ""))
    if args.json:
        out = dict(s)
        out["test_accuracy"] = float(result.test_accuracy)
        out["config"] = result.config.to_dict()
        out["versions"] = dict(result.versions)
        # the settings taken from the dataset's recommendation, not given by the user (engine.recommended)
        out["recommended"] = getattr(args, "recommended", None) or None
        if exported:
            out["export"] = str(exported[0])
            out["export_csv"] = str(exported[1]) if exported[1] else None
        print(json.dumps(out), flush=True)
    else:
        print(f"{100 * result.test_accuracy:.2f}", flush=True)


def cmd_train(args) -> int:
    _set_threads(args.threads or _usable_cores())
    paths = _export_paths(args.export) if args.export else None
    result = _train(args)
    exported = None
    if paths:
        from .topology import export_result

        exported = export_result(result, paths[0], csv_path=paths[1])
    _report_train(args, result, exported)
    return EXIT_OK


def cmd_export(args) -> int:
    _set_threads(args.threads or _usable_cores())
    if args.source:
        from .topology import csv_path_for, load_topology, write_topology_csv

        if _flag_changes(args) or args.sparsity is not None or args.config or args.overrides:
            raise CliError("--from re-exports an existing file, so training options cannot be given with it")
        topo = load_topology(args.source)
        out = Path(args.output) if args.output else csv_path_for(args.source)
        if out.suffix.lower() == ".json":
            raise CliError(f"the CSV output {out} must not end in .json")
        if out.resolve() == Path(args.source).resolve():
            raise CliError("the CSV output would overwrite the topology file")
        write_topology_csv(topo, out)
        _info(f"wrote {out} ({topo.kind}, model {topo.model_name})")
        if args.json:
            print(json.dumps({"source": str(args.source), "csv": str(out), "kind": topo.kind,
                              "model": topo.model_name}), flush=True)
        else:
            print(str(out), flush=True)
        return EXIT_OK
    if not args.output:
        raise CliError("export needs an OUTPUT file to write (or --from TOPOLOGY to re-export a file)")
    paths = _export_paths(args.output)
    result = _train(args)
    from .topology import export_result

    exported = export_result(result, paths[0], csv_path=paths[1])
    _report_train(args, result, exported)
    return EXIT_OK


def cmd_evaluate(args) -> int:
    from .data import load_dataset
    from .evaluation import evaluate_topology
    from .topology import load_topology

    _set_threads(args.threads or _usable_cores())
    topo = load_topology(args.file)
    name = args.dataset or topo.dataset
    ds = load_dataset(name, args.data_dir if args.data_dir is not None else topo.config.data_dir)
    acc = evaluate_topology(topo, ds, split=args.split)
    from .messages import clipped  # names from the file are printed escaped (no terminal sequences)
    shown_name = clipped(name, 200)
    recorded = topo.recorded_accuracy
    comparable = recorded is not None and name == topo.dataset and (
        args.split == "recorded" or topo.evaluated_on == "test")
    where = "validation split" if (args.split == "recorded" and topo.evaluated_on == "validation"
                                   and name == topo.dataset) else "test set"
    line = f"{topo.model_name} (K={topo.resonators_per_chain}): accuracy {100 * acc:.2f} % on {shown_name} {where}"
    # Files store the accuracy at full precision; allow for one rounded to 6 decimals (RunResult.summary()).
    matches = comparable and abs(acc - recorded) <= 5e-7
    if comparable:
        diff = acc - recorded
        line += (f"; recorded {100 * recorded:.2f} % (" +
                 ("identical)" if acc == recorded else "the same to 6 decimals)" if matches
                  else f"differs by {100 * diff:+.2f} points)"))
    elif recorded is not None:
        line += f"; recorded {100 * recorded:.2f} % on {clipped(topo.dataset, 200)} {topo.evaluated_on} (not comparable)"
    _info(line)
    if args.json:
        print(json.dumps({"file": str(args.file), "kind": topo.kind, "model": topo.model_name,
                          "resonators_per_chain": topo.resonators_per_chain, "dataset": name,
                          "split": where.replace(" set", "").replace(" split", ""), "test_accuracy": acc,
                          "recorded_accuracy": recorded, "matches_recorded": matches if comparable else None}),
              flush=True)
    else:
        print(f"{100 * acc:.2f}", flush=True)
    if args.check and comparable and not matches:
        return EXIT_MISMATCH
    return EXIT_OK


def cmd_models(args) -> int:
    from .models import get_spec, list_models

    rows = []
    for name in list_models():
        spec = get_spec(name)
        rows.append({"name": name, "label": spec.label, "family": spec.family, "uses_k": spec.uses_k,
                     "trains_topology": spec.trains_topology, "default_lr": spec.default_lr,
                     "params": spec.params_class.__name__})
        _info(f"{name:<10} {spec.family:<8} {'K' if spec.uses_k else '-'}  lr {spec.default_lr:<7g} "
              f"{spec.label}")
    if getattr(args, "json", False):
        print(json.dumps({"models": rows}), flush=True)
    else:
        print("\n".join(r["name"] for r in rows), flush=True)
    return EXIT_OK


def cmd_data(args) -> int:
    from .fetch import FetchCancelled, FetchError, run_data_command
    from .progress import CancelToken

    if not getattr(args, "data_command", None):
        raise CliError("say what to do: 'data fetch NAME' or 'data list' (see rfexplorer-cli data --help)")
    token = CancelToken()
    try:
        with _cancel_on_sigint(token):  # Ctrl-C: the file in progress is discarded, finished ones are kept
            return run_data_command(args, cancel=token)
    except FetchError as exc:
        raise CliError(str(exc)) from None
    except FetchCancelled:
        raise Interrupted from None


def cmd_doctor(args) -> int:
    from .doctor import exit_status, format_checklist, run_checks

    checks = run_checks(args.data_dir)
    print(format_checklist(checks), flush=True)
    if args.json:
        print(json.dumps({"checks": [c.to_dict() for c in checks]}), flush=True)
    return exit_status(checks)


def cmd_sweep(args) -> int:
    from .progress import CancelToken
    from .progress_bar import ProgressBar
    from dataclasses import replace

    from .sweep import ROWS_FILE, SweepSpec, result_paths, run_sweep, vary_variants, write_vary_table

    backend = getattr(args, "backend", "local")
    address = getattr(args, "address", None)
    if address and backend != "ray":
        raise CliError("--address names a Ray cluster, so it needs --backend ray")
    max_retries = getattr(args, "max_retries", None)
    if max_retries is not None and backend != "ray":
        raise CliError("--max-retries applies to Ray tasks, so it needs --backend ray")
    if backend == "ray":
        from .sweep_ray import RayUnavailableError, import_ray

        try:
            import_ray()
        except RayUnavailableError as exc:
            raise CliError(str(exc)) from None
    if getattr(args, "multilayer", False):
        spec = SweepSpec.multilayer(args.dataset or "mnist")
    else:
        spec = SweepSpec.quick() if args.quick else SweepSpec.full()
    if args.overrides and any(o.strip().startswith("model_params.") for o in args.overrides):
        raise CliError("a sweep trains several models, so model_params cannot be set with --set; train one "
                       "model with 'train' instead")
    base = config_from_args(args, base=spec.base.to_dict())
    workers = args.workers or _usable_cores()
    changes = {"base": base, "workers": workers, "threads_per_worker": args.threads or 1}
    if args.models:
        changes["models"] = tuple(args.models)
    if args.ks:
        changes["ks"] = tuple(args.ks)
    if args.seeds is not None:
        changes["seeds"] = tuple(args.seeds)
    kept = {m: v for m, v in spec.model_settings.items() if m in changes.get("models", spec.models)}
    if getattr(args, "lr", None) is not None:  # a learning rate given on the command line applies to every model
        kept = {m: {k: x for k, x in v.items() if k != "lr"} for m, v in kept.items()}
    spec = replace(spec, model_settings=kept)
    vary = _vary_settings(getattr(args, "vary", []) or [], base.model)
    if vary:
        changes["variants"] = vary_variants(spec.variants, vary)
    spec = SweepSpec(**{**{"models": spec.models, "ks": spec.ks, "seeds": spec.seeds, "variants": spec.variants,
                           "model_settings": spec.model_settings}, **changes})
    n_jobs = len(spec.jobs())
    workers_used = min(spec.workers, n_jobs)
    # The coordinating process needs one thread; the in-process path uses --threads (default 1).
    _set_threads(spec.threads_per_worker if workers_used == 1 and backend == "local" else 1)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"the output folder {out_dir} is a file")
    sets_k = any("resonators_per_chain" in v for v in spec.variants)
    shapes = (f"{len(spec.variants)} setting variant(s)" if sets_k else
              f"K in {', '.join(map(str, spec.ks))}" + (f" x {len(spec.variants)} setting variants"
                                                         if len(spec.variants) > 1 else ""))
    _info(f"sweep: {n_jobs} runs ({', '.join(spec.models)}; {shapes}; seeds "
          f"{', '.join(map(str, spec.seeds))}) on {base.dataset}, {base.epochs} epoch(s), "
          + (f"{workers_used} worker(s)" if backend == "local" else
             f"Ray cluster at {address}" if address else f"local Ray instance with {spec.workers} CPU(s)")
          + f"; rows go to {out_dir / ROWS_FILE} as they finish")
    start = time.perf_counter()
    state = {"n": 0, "total": n_jobs, "bar": None}
    quiet = getattr(args, "quiet", False)

    def on_plan(total: int, done: int) -> None:
        state["n"], state["total"] = done, total
        state["bar"] = ProgressBar(total, desc="sweep", unit="run", initial=done, quiet=quiet)

    def on_result(row: dict) -> None:
        state["n"] += 1
        acc = row.get("test_accuracy")
        status = f"{100 * acc:6.2f} %" if acc is not None else f"FAILED: {row.get('error')}"
        secs = row.get("train_seconds")
        layers = row.get("hidden") or ()
        k_text = ",".join(map(str, row.get("layer_ks") or ())) if layers else str(row["resonators_per_chain"])
        shape = f" hidden {','.join(map(str, layers))}" if layers else ""
        what = f"{row['model']:<9} K={k_text:<4}{shape} seed {row['seed']}"
        bar = state["bar"]
        if bar is not None and bar.enabled:
            if acc is None:
                bar.write(f"{what}  {status}")
            bar.update(1, postfix=f"{row['model']} K={row['resonators_per_chain']}: {status.strip()}")
        else:
            total = state["total"]
            _info(f"[{state['n']:>{len(str(total))}}/{total}] {what}  {status}"
                  + (f"  {secs:.1f} s" if secs is not None else ""))

    token = CancelToken()
    rows: list = []
    with _cancel_on_sigint(token):  # Ctrl-C and SIGTERM: finished runs are kept
        try:
            rows = run_sweep(spec, on_result=on_result, cancel=token, out_dir=out_dir, on_note=_info,
                             on_plan=on_plan, backend=backend, address=address, max_retries=max_retries)
        finally:
            if state["bar"] is not None:
                state["bar"].close()
    elapsed = time.perf_counter() - start
    paths = result_paths(out_dir) if rows else {}
    if paths:
        _info(f"wrote {paths['csv']}, {paths['json']}, {paths['md']} ({len(rows)} runs in {elapsed:.0f} s)")
    if rows and vary:
        paths["vary"] = write_vary_table(rows, [path for path, _ in vary], out_dir)
        _info(f"wrote {paths['vary']}")
    if token.is_set():
        _info(f"interrupted after {len(rows)} of {n_jobs} runs" + (" (partial results written)" if rows else ""))
        raise Interrupted
    if args.json:
        print(json.dumps({"out": str(out_dir), "runs": len(rows), "failed": sum(r.get("error") is not None
                                                                                 for r in rows),
                          "seconds": round(elapsed, 1), "files": {k: str(v) for k, v in paths.items()}}),
              flush=True)
    else:
        print(Path(paths["md"]).read_text(encoding="utf-8"), end="", flush=True)
    return EXIT_OK


def _vary_settings(texts: Sequence[str], model: str) -> list[tuple[str, list]]:
    """``--vary path=v1,v2,...`` options -> [(path, typed values)] (CliError for a bad one)."""
    from .config import parse_override

    out = []
    for text in texts:
        path, sep, values = text.partition("=")
        path = path.strip()
        if not sep or not path or not values.strip():
            raise CliError(f"--vary must look like path.to.setting=v1,v2,... (got {text!r})")
        if path.startswith("model_params.") or path == "model_params":
            raise CliError("a sweep trains several models, so model_params cannot be varied; train one model "
                           "with 'train' instead")
        if path in ("model", "seed"):
            raise CliError(f"vary {path} with --{path}s instead of --vary")
        if any(p == path for p, _ in out):
            raise CliError(f"--vary names {path} twice")
        typed = [parse_override(f"{path}={part}", model)[1] for part in values.replace(",", " ").split()]
        out.append((path, list(dict.fromkeys(typed))))
    return out


def _robustness_png(json_path: Path, png_path: Path) -> Optional[str]:
    """Draw the robustness PNG with the app's offscreen figure tool (rfexplorer.robustness_figure), run as a
    separate program so the engine never imports Qt; None, with a note, where it cannot run (no PySide6)."""
    import subprocess

    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    try:
        proc = subprocess.run([sys.executable, "-m", "rfexplorer.robustness_figure", str(json_path), str(png_path)],
                              capture_output=True, text=True, env=env, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _info(f"note: robustness.png was not drawn ({exc}); the CSV and JSON are written")
        return None
    if proc.returncode != 0 or not png_path.exists():
        why = (proc.stderr.strip().splitlines() or ["the figure tool failed"])[-1]
        _info(f"note: robustness.png was not drawn ({why}); the CSV and JSON are written")
        return None
    return str(png_path)


def cmd_robustness(args) -> int:
    from .data import load_dataset
    from .evaluation import check_dataset, evaluation_split
    from .files import atomic_write_files, check_output_folder, dumps_json
    from .hardware import parse_knob_values, robustness
    from .progress_bar import ProgressBar
    from .tables import csv_text
    from .topology import load_topology

    _set_threads(args.threads or _usable_cores())
    knob = args.knob[len("device."):] if args.knob.startswith("device.") else args.knob
    values = parse_knob_values(knob, args.values)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"the output folder {out_dir} is a file")
    check_output_folder(out_dir)  # before the evaluations, not after
    topo = load_topology(args.file)
    if not getattr(topo.model, "is_rf", False):
        raise CliError(f"{args.file} holds a {topo.model_name} network; robustness needs an RF network")
    name = args.dataset or topo.dataset
    ds = load_dataset(name, args.data_dir if args.data_dir is not None else topo.config.data_dir)
    check_dataset(topo, ds)
    x, y = evaluation_split(topo, ds, split=args.split)
    _info(f"robustness of {topo.model_name} ({args.file}) on {name}: device.{knob} in "
          f"{', '.join(map(str, values))}, {args.repeats} chip(s) each, seeds {args.seed}..{args.seed + args.repeats - 1}")
    start = time.perf_counter()
    with ProgressBar(len(values) * args.repeats, desc="robustness", unit="chip", quiet=args.quiet) as bar:
        def on_eval(value, r, acc):
            bar.update(1, postfix=f"{knob}={value}: {100 * acc:.2f} %")

        rows = robustness(topo.model, x, y, knob, values, args.repeats, seed=args.seed, on_eval=on_eval)
    for row in rows:
        _info(f"{knob} = {row['value']}: {100 * row['mean']:.2f} ± {100 * row['std']:.2f} % (n = {row['n']})")
    out_dir.mkdir(parents=True, exist_ok=True)
    header = ["knob", "value", "mean", "std", "n", "accuracies"]
    table = [[r["knob"], r["value"], r["mean"], r["std"], r["n"], " ".join(f"{a:.6f}" for a in r["accuracies"])]
             for r in rows]
    files = {"csv": str(out_dir / "robustness.csv"), "json": str(out_dir / "robustness.json")}
    doc = {"format": "rfexplorer-robustness", "file": str(args.file), "model": topo.model_name, "dataset": name,
           "split": args.split, "knob": knob, "repeats": args.repeats, "seed": args.seed,
           "physics": topo.model.params.to_dict(), "rows": rows}
    atomic_write_files([(files["csv"], csv_text(header, table).encode("utf-8")),  # a pair, the JSON last
                        (files["json"], dumps_json(doc).encode("utf-8"))])
    if not args.no_figure:
        png = _robustness_png(Path(files["json"]), out_dir / "robustness.png")
        if png is not None:
            files["png"] = png
    _info(f"wrote {', '.join(files.values())} in {time.perf_counter() - start:.1f} s")
    summary = [{"knob": r["knob"], "value": r["value"], "mean": r["mean"], "std": r["std"], "n": r["n"]}
               for r in rows]
    print(json.dumps({"file": str(args.file), "knob": knob, "out": str(out_dir), "files": files, "rows": summary}),
          flush=True)
    return EXIT_OK


def cmd_hardware_study(args) -> int:
    from dataclasses import replace

    from .hardware_study import ROWS_FILE, StudySpec, run_study
    from .models import get_spec
    from .progress import CancelToken
    from .progress_bar import ProgressBar

    spec = StudySpec.quick() if args.quick else StudySpec()
    changes: dict = {"workers": args.workers or _usable_cores()}
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
    spec = replace(spec, **changes)
    n_jobs = len(spec.jobs())
    _set_threads(1)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"the output folder {out_dir} is a file")
    _info(f"hardware study: {n_jobs} training runs ({', '.join(spec.models)}, K = {spec.resonators_per_chain}, "
          f"seeds {', '.join(map(str, spec.seeds))}) on {spec.dataset}, {spec.epochs} epoch(s), "
          f"{min(spec.workers, n_jobs)} worker(s); rows go to {out_dir / ROWS_FILE} as they finish")
    start = time.perf_counter()
    state = {"n": 0, "total": n_jobs, "bar": None}

    def on_plan(total: int, done: int) -> None:
        state["n"], state["total"] = done, total
        if done:
            _info(f"resuming: {done} of {total} runs already done in {out_dir / ROWS_FILE}")
        state["bar"] = ProgressBar(total, desc="hardware study", unit="run", initial=done, quiet=args.quiet)

    def on_result(row: dict) -> None:
        state["n"] += 1
        acc = row.get("test_accuracy")
        status = f"{100 * acc:6.2f} %" if acc is not None else f"FAILED: {row.get('error')}"
        what = f"{row['model']:<9} {row['part']:<15} {row['level']!s:<7} seed {row['seed']}"
        bar = state["bar"]
        if bar is not None and bar.enabled:
            bar.update(1, postfix=f"{what}: {status.strip()}")
        else:
            _info(f"[{state['n']:>{len(str(state['total']))}}/{state['total']}] {what}  {status}  "
                  f"{float(row.get('train_seconds') or 0.0):.1f} s")

    token = CancelToken()
    with _cancel_on_sigint(token):
        try:
            doc = run_study(spec, out_dir=out_dir, on_result=on_result, cancel=token, on_plan=on_plan)
        finally:
            if state["bar"] is not None:
                state["bar"].close()
    elapsed = time.perf_counter() - start
    if doc["runs"]:
        _info(f"wrote {out_dir / 'hardware.json'}, {out_dir / 'hardware.csv'}, {out_dir / 'hardware_tables.md'} "
              f"({doc['runs']} runs, {elapsed:.0f} s)")
    if token.is_set():
        _info(f"interrupted after {doc['runs']} of {n_jobs} runs" + (" (partial results written)" if doc["runs"] else ""))
        raise Interrupted
    if args.json:
        print(json.dumps({"out": str(out_dir), "runs": doc["runs"], "seconds": round(elapsed, 1),
                          "verdicts": doc["verdicts"], "conclusion": doc["conclusion"]}), flush=True)
    else:
        print(doc["tables"] + "\n" + doc["verdict_text"], flush=True)
    return EXIT_OK


COMMANDS = {"train": cmd_train, "export": cmd_export, "evaluate": cmd_evaluate, "sweep": cmd_sweep,
            "models": cmd_models, "doctor": cmd_doctor, "robustness": cmd_robustness,
            "hardware-study": cmd_hardware_study, "data": cmd_data}


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
    from .data import DataNotFoundError
    from .progress import DivergenceError

    try:
        with _signals_as_interrupt():
            return COMMANDS[args.command](args)
    except (Interrupted, KeyboardInterrupt):
        if _STOP_SIGNAL["signum"] == signal.SIGTERM:
            _info("terminated")
            return EXIT_TERMINATED
        _info("interrupted")
        return EXIT_INTERRUPTED
    except CliError as exc:
        _err(str(exc))
    except DataNotFoundError as exc:
        _err(str(exc))
    except DivergenceError as exc:
        _err(str(exc))
    except ValueError as exc:  # TopologyFileError, invalid settings
        _err(str(exc))
    except OSError as exc:  # a file that cannot be written or read
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        _err(f"{exc.strerror or exc}{where}")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
