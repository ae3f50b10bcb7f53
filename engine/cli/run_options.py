"""The run-setting options of train, export and sweep, and the RunConfig they build.

Every named option that sets one field of the settings tree (engine.config.run_config.RunConfig) is a row of
:data:`RUN_OPTIONS` or :data:`DEVICE_OPTIONS`: its flags, the field's dotted path and its argparse keywords. The
parser is built from these tables and :func:`flag_changes` reads the values back through them, so a flag and
its setting are named once. ``--config FILE`` and ``--set PATH=VALUE`` reach every other field.
"""

from __future__ import annotations

import argparse
from typing import Optional

from engine.cli.common import (
    add_store_options,
    csv_list,
    finite_float,
    hidden_sizes,
    info,
    k_value,
    learning_rate,
    nonneg_int,
    positive_int,
)
from engine.config.models import list_models
from engine.config.run_config import BUDGETS, apply_overrides, build_config, k_from_removed_pct, load_toml
from engine.core.settings_tree import set_path
from engine.data.dataset import DATASET_NAMES
from engine.experiments.recommended import fill_recommended
from engine.physics.resonators import FREQUENCY_PLANS, HARDWARE_REGIMES, PARITIES

#: Options of one run only (not of a sweep, which has --models, --ks and --seeds instead).
SINGLE = "single"
#: Options that exclude each other (argparse refuses both at once).
K_OR_SPARSITY = "k-or-sparsity"

#: The "run" group: (flags, dotted path of the setting or None where flag_changes reads it itself, argparse
#: keywords, tags). In --help order.
RUN_OPTIONS = (
    (("--model",), "model", dict(choices=list_models(), help="model to train (default: rf)"), (SINGLE,)),
    (
        ("-K", "--resonators-per-chain"),
        None,
        dict(
            dest="k",
            type=csv_list(k_value),
            metavar="K",
            help="resonators per chain = weights per class, 1..N inputs (default: 10); with --hidden, one value per "
            "layer (-K 30,100) or one for all",
        ),
        (SINGLE, K_OR_SPARSITY),
    ),
    (
        ("--sparsity",),
        None,
        dict(
            type=finite_float, metavar="PCT", help="percentage of synapses removed, 0..100, converted to the nearest K"
        ),
        (SINGLE, K_OR_SPARSITY),
    ),
    (
        ("--hardware",),
        "hardware",
        dict(
            choices=HARDWARE_REGIMES,
            help="how RF training meets device spreads and noise: 'ideal' (nominal device, deployed to a new chip), "
            "'aware' (a fresh chip and noise every batch), 'in-situ' (one chip; default)",
        ),
        (),
    ),
    (
        ("--hidden",),
        None,
        dict(
            type=hidden_sizes,
            metavar="H1[,H2...]",
            help="hidden layers of H chains each, driving STNO neurons (RF) or ReLU units (baselines)",
        ),
        (),
    ),
    (
        ("--dataset",),
        "dataset",
        dict(
            metavar="NAME|FILE",
            help=f"a dataset name ({', '.join(DATASET_NAMES)}) or a .npz/.csv/.h5 file (default: mnist-mini)",
        ),
        (),
    ),
    (
        ("--data-dir",),
        "data_dir",
        dict(
            metavar="DIR",
            help="folder holding MNIST/, FashionMNIST/, KMNIST/ in torchvision's layout "
            "(default: $RFEXPLORER_DATA or ~/.local/share/rfexplorer/data)",
        ),
        (),
    ),
    (("--epochs",), "epochs", dict(type=positive_int, help="training epochs"), ()),
    (("--batch-size",), "batch_size", dict(type=positive_int, help="mini-batch size (default: 100)"), ()),
    (("--lr",), "lr", dict(type=learning_rate, help="learning rate (default: the model's tuned one)"), ()),
    (("--seed",), "seed", dict(type=nonneg_int, help="random seed (default: 0)"), (SINGLE,)),
    (
        ("--budget",),
        "budget",
        dict(choices=BUDGETS, help="sparse baselines: K weights per class ('per-output') or K*C anywhere ('global')"),
        (),
    ),
    (
        ("--device",),
        "compute_device",
        dict(
            dest="compute_device",
            choices=("auto", "cpu", "cuda"),
            help="where tensors live: cpu (default), cuda (a GPU) or auto (the GPU when there is one)",
        ),
        (),
    ),
    (
        ("--validation-fraction",),
        "validation_fraction",
        dict(
            type=finite_float,
            metavar="F",
            help="hold out this fraction of the training set and report accuracy on it, not on the test set",
        ),
        (),
    ),
)

#: The "device" group, as RUN_OPTIONS.
DEVICE_OPTIONS = (
    (("--alpha",), "device.alpha", dict(type=finite_float, help="Gilbert damping (linewidth = alpha f)"), ()),
    (("--phi",), "device.phi", dict(type=finite_float, help="lineshape phase in rad (0 = antisymmetric)"), ()),
    (("--f-min",), "device.f_min_ghz", dict(type=finite_float, metavar="GHZ", help="first input frequency (GHz)"), ()),
    (("--f-max",), "device.f_max_ghz", dict(type=finite_float, metavar="GHZ", help="last input frequency (GHz)"), ()),
    (("--plan",), "device.plan", dict(choices=FREQUENCY_PLANS, help="input frequency plan"), ()),
    (("--parity",), "device.parity", dict(choices=PARITIES, help="chain sign convention"), ()),
    (
        ("--alpha-dtod",),
        "device.alpha_dtod",
        dict(
            type=finite_float, metavar="REL", help="device-to-device spread of the resonators' damping (relative std)"
        ),
        (),
    ),
    (
        ("--k-sd-dtod",),
        "device.k_sd_dtod",
        dict(type=finite_float, metavar="REL", help="device-to-device spread of the resonators' K_SD (relative std)"),
        (),
    ),
    (
        ("--readout-noise",),
        "device.readout_noise_v",
        dict(type=finite_float, metavar="V", help="std of the noise added to each chain voltage at every read-out"),
        (),
    ),
)


def _dest(flags: tuple, keywords: dict) -> str:
    return keywords.get("dest") or flags[-1].lstrip("-").replace("-", "_")


#: argparse destination -> dotted path of the setting it sets (from the two tables).
SETTING_PATHS = {_dest(flags, kw): path for flags, path, kw, _ in (*RUN_OPTIONS, *DEVICE_OPTIONS) if path}


def add_run_options(p: argparse.ArgumentParser, *, single: bool = True) -> None:
    """The settings, run, device and run store option groups (``single``: with the options of one run)."""
    s = p.add_argument_group("settings")
    s.add_argument(
        "--config",
        default=None,
        metavar="FILE.toml",
        help="read run settings from a TOML file (the engine.config.run_config.RunConfig tree)",
    )
    s.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="set one setting, e.g. plasticity.interval_steps=50 or device.alpha=0.004 (repeatable; applied last)",
    )
    for title, rows in (("run", RUN_OPTIONS), ("device", DEVICE_OPTIONS)):
        group = p.add_argument_group(title)
        exclusive = None
        for flags, _, keywords, tags in rows:
            if SINGLE in tags and not single:
                continue
            target = group
            if K_OR_SPARSITY in tags:
                exclusive = exclusive or group.add_mutually_exclusive_group()
                target = exclusive
            target.add_argument(*flags, default=None, **keywords)
    add_store_options(p)  # where the finished runs are recorded (engine.io.store), or --no-store


def flag_changes(args) -> dict:
    """The settings given as named options, as {dotted path: value}."""
    changes = {
        path: getattr(args, dest) for dest, path in SETTING_PATHS.items() if getattr(args, dest, None) is not None
    }
    if getattr(args, "k", None) is not None:
        changes["resonators_per_chain"] = args.k[0]
        changes["layer_resonators"] = tuple(args.k[1:])
    if getattr(args, "hidden", None) is not None:
        changes["hidden"] = tuple(args.hidden)
    return changes


def config_from_args(args, base: Optional[dict] = None, recommended: Optional[dict] = None):
    """The RunConfig of a command: ``base`` (a preset), then --config, then named options, then --set.
    Given a ``recommended`` dict, epochs, batch size and learning rate left unset come from the dataset's
    recommendation (engine.experiments.recommended) and the dict receives its record. Raises SettingError / ValueError
    with the reason when a setting is invalid."""
    mapping = dict(base or {})
    if getattr(args, "config", None):
        for key, value in load_toml(args.config).items():
            mapping[key] = value
    for key, value in flag_changes(args).items():
        mapping = set_path(mapping, key, value)
    overrides = getattr(args, "overrides", []) or []
    if recommended is not None:
        mapping, record = fill_recommended(apply_overrides(mapping, overrides))  # (what the user set is kept)
        recommended.update(record)
        overrides = []
    return build_config(None, overrides, base=mapping)


def apply_sparsity(args, cfg, n_inputs: int):
    """K from --sparsity (needs the dataset's N); a note when the model does not use K."""
    if getattr(args, "sparsity", None) is not None:
        k = k_from_removed_pct(args.sparsity, n_inputs)
        info(f"sparsity {args.sparsity:g} % removed -> {k} resonators per chain")
        cfg = cfg.with_(resonators_per_chain=k)
    if not cfg.spec.uses_k and (getattr(args, "k", None) is not None or getattr(args, "sparsity", None) is not None):
        info(f"note: {cfg.spec.label} uses all {n_inputs} weights per class; K is ignored")
    return cfg
