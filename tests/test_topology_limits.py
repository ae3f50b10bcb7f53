"""Topology files from a fuzz campaign (issue #19): declared sizes over the limits refused before anything is
allocated (fast, small in memory), every number finite and float32, bounded and escaped messages, the
v3-only kinds in older files, and a history no longer than the recorded epochs."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine import cli
from engine.config.run_config import RunConfig
from engine.core.limits import FileLimits
from engine.core.messages import ELLIPSIS, clipped, escaped, sentence, shown
from engine.config.models import build_model
from engine.io.topology import TopologyFileError, load_topology, topology_document, topology_from_document

ROOT = Path(__file__).resolve().parent.parent
N_INPUTS, N_CLASSES = 16, 4


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs torch on one thread (see conftest.one_torch_thread)."""


def _document(model: str, n_inputs: int = N_INPUTS, n_classes: int = N_CLASSES, shape=(4, 4), class_names=None,
              **settings) -> dict:
    """A small valid (untrained) document of ``model``: 16 inputs (a 4 x 4 image), 4 classes, one epoch."""
    cfg = RunConfig(model=model, resonators_per_chain=4, epochs=1, **settings)
    doc = topology_document(build_model(cfg, n_inputs, n_classes), cfg, dataset="tiny", image_shape=shape,
                            class_names=class_names, metrics={"test_accuracy": 0.5, "loss": 1.25},
                            history=[[1, 1.25, 0.5, 0.5]])
    return json.loads(json.dumps(doc))


@pytest.fixture(scope="module")
def docs() -> dict:
    built = {"rf": _document("rf"), "rigl": _document("rigl"), "rf-network": _document("rf", hidden=(6,)),
             "sparse-network": _document("dense", hidden=(6,))}
    assert [d["kind"] for d in built.values()] == ["rf-perceptron", "sparse-perceptron", "rf-network",
                                                   "sparse-network"]
    for doc in built.values():  # the starting points are valid
        topology_from_document(copy.deepcopy(doc))
    return built


def _refused(doc: dict, *, limits: FileLimits | None = None) -> str:
    with pytest.raises(TopologyFileError) as info:
        if limits is None:
            topology_from_document(doc)
        else:
            topology_from_document(doc, limits=limits)
    msg = str(info.value)
    assert "\n" not in msg and msg.endswith(".") and len(msg) <= 200, msg
    return msg


def _write(tmp_path: Path, text: str, name: str = "t.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- declared sizes: refused before anything is allocated -------------------------------------------------

_PROBE = textwrap.dedent("""
    import json, resource, sys, time
    from engine.io.topology import TopologyFileError, load_topology
    vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + 3 * 2**30, resource.RLIM_INFINITY))  # old code: MemoryError
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        load_topology(sys.argv[1])
        outcome = "loaded"
    except TopologyFileError as exc:
        outcome = "refused: " + str(exc)
    except BaseException as exc:
        outcome = "crashed: " + type(exc).__name__
    seconds = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(json.dumps({"outcome": outcome, "seconds": seconds, "rss_mb": grown}))
""")


def _probe(path: Path) -> dict:
    """Load ``path`` in a fresh interpreter: outcome, seconds and RSS growth over the loaded interpreter (MB)."""
    run = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _sparse_network(doc: dict, sizes: list) -> dict:
    """A dense multilayer file declaring ``sizes``, consistent but for the weights (none) and hidden biases."""
    doc = copy.deepcopy(doc)
    doc.update(n_inputs=sizes[0], n_classes=sizes[-1], layer_sizes=sizes, layer_ks=[4] * (len(sizes) - 1),
               class_names=[str(c) for c in range(sizes[-1])], image_shape=None)
    doc["config"]["hidden"] = sizes[1:-1]
    doc["layers"] = [{"index": l, "bias": [0.0] * (n if l == len(sizes) - 2 else 1), "weights": []}
                     for l, n in enumerate(sizes[1:])]
    return doc


@pytest.mark.parametrize("case", ["hidden 10^6", "hidden 10^5 x 10^5", "10^6 inputs x 100 classes"])
def test_huge_declared_sizes_are_refused_fast_and_small(docs, tmp_path, case):
    if case == "hidden 10^6":
        doc, field = _sparse_network(docs["sparse-network"], [784, 1_000_000, 10]), "layer_sizes[1]"
    elif case == "hidden 10^5 x 10^5":
        doc, field = _sparse_network(docs["sparse-network"], [784, 100_000, 100_000, 10]), "numbers"
    else:
        doc, field = copy.deepcopy(docs["rigl"]), "numbers"
        doc.update(n_inputs=1_000_000, n_classes=100, class_names=[str(c) for c in range(100)], image_shape=None,
                   bias=[0.0] * 100)
    path = _write(tmp_path, json.dumps(doc))
    assert path.stat().st_size < 20_000  # a small file declaring a huge network
    got = _probe(path)
    print(case, {k: got[k] for k in ("seconds", "rss_mb")})  # shown with pytest -s
    assert got["outcome"].startswith("refused: ") and field in got["outcome"] and "limit" in got["outcome"], got
    assert got["seconds"] < 2.0 and got["rss_mb"] < 500, got


@pytest.mark.parametrize("kind,limit,expected", [
    ("rf", {"max_features": 10}, "n_inputs is 16, over the limit of 10 "
                                 "(RFEXPLORER_LIMIT_MAX_FEATURES raises it)"),
    ("rf", {"max_classes": 3}, "n_classes is 4, over the limit of 3 ("),
    ("rf", {"max_resonators_per_chain": 3}, "resonators_per_chain is 4, over the limit of 3 ("),
    ("rf-network", {"max_layer_size": 5}, "layer_sizes[1] is 6, over the limit of 5 ("),
    ("rf-network", {"max_resonators_per_chain": 3}, "layer_ks[0] is 4, over the limit of 3 ("),
    ("sparse-network", {"max_layers": 1}, "it has 2 layers, over the limit of 1 "
                                          "(RFEXPLORER_LIMIT_MAX_LAYERS raises it)"),
    ("rf", {"max_parameters": 30}, "hold 36 numbers, over the limit of 30 "
                                   "(RFEXPLORER_LIMIT_MAX_PARAMETERS"),
    ("sparse-network", {"max_parameters": 50}, "its network would hold 130 numbers"),
])
def test_each_declared_size_is_checked_against_its_limit(docs, kind, limit, expected):
    assert expected in _refused(copy.deepcopy(docs[kind]), limits=FileLimits(**limit))


def test_limits_come_from_the_environment(docs, tmp_path, monkeypatch):
    path = _write(tmp_path, json.dumps(docs["sparse-network"]))
    load_topology(path)
    monkeypatch.setenv("RFEXPLORER_LIMIT_MAX_LAYER_SIZE", "5")
    with pytest.raises(TopologyFileError, match=r"layer_sizes\[1\] is 6, over the limit .*MAX_LAYER_SIZE"):
        load_topology(path)


def test_a_list_longer_than_its_declared_size_is_refused_before_the_schema(docs):
    doc = copy.deepcopy(docs["rigl"])
    doc["weights"] = [[0, i % N_INPUTS, 1.0] for i in range(N_INPUTS * N_CLASSES + 1)]
    assert "weights has 65 entries where at most 64" in _refused(doc)
    doc = copy.deepcopy(docs["rf-network"])
    doc["layers"][1]["inputs"]["comb_position"] *= 3
    assert "layers[1].inputs.comb_position has 18 entries where at most 6" in _refused(doc)


# --- numbers: finite everywhere, float32 in the network ---------------------------------------------------

def _set(doc: dict, path: tuple, value) -> dict:
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


NETWORK_FIELDS = {
    "physics.alpha": ("rf", ("physics", "alpha")),
    "readout.log_gain": ("rf", ("readout", "log_gain")),
    "layers[0].stno.log_gm": ("rf-network", ("layers", 0, "stno", "log_gm")),
    "weights[2] weight": ("rigl", ("weights", 2, 2)),
    "layers[1].weights[0][2]": ("sparse-network", ("layers", 1, "weights", 0, 2)),
    "chains[3].bias": ("rf", ("chains", 3, "bias")),
    "layers[1].chains[3].bias": ("rf-network", ("layers", 1, "chains", 3, "bias")),
    "bias[1]": ("rigl", ("bias", 1)),
    "chains[1].resonators[2].coupling_v_per_uw": ("rf", ("chains", 1, "resonators", 2, "coupling_v_per_uw")),
}


@pytest.mark.parametrize("field", list(NETWORK_FIELDS))
@pytest.mark.parametrize("value,shown_as", [(1e308, "1e+308"), (1e39, "1e+39"), (-1e39, "-1e+39"),
                                            (10 ** 40, "10000000000000000000000000000000000000000")])
def test_numbers_beyond_float32_are_refused_with_their_path(docs, field, value, shown_as):
    kind, path = NETWORK_FIELDS[field]
    msg = _refused(_set(copy.deepcopy(docs[kind]), path, value))
    assert f"{field} is {shown_as}, beyond float32" in msg, msg


@pytest.mark.parametrize("field", ["physics.alpha", "physics.k_sd", "chains[3].bias"])
def test_numbers_that_float32_turns_into_zero_are_refused(docs, field):
    path = {"physics.alpha": ("physics", "alpha"), "physics.k_sd": ("physics", "k_sd"),
            "chains[3].bias": ("chains", 3, "bias")}[field]
    msg = _refused(_set(copy.deepcopy(docs["rf"]), path, 1e-300))
    assert f"{field} is 1e-300, too small for float32" in msg, msg


@pytest.mark.parametrize("path,value,expected", [
    (("physics", "alpha"), 1e-9, "physics.alpha is 1e-09, out of range (must be >= 1e-06)"),
    (("physics", "alpha"), 2.0, "physics.alpha is 2.0, out of range (must be <= 1)"),
    (("readout", "log_gain"), 100.0, "readout.log_gain is 100.0, out of range (must be <= 80)"),
    (("physics", "f_max_ghz"), 1e30, "physics.f_max_ghz is 1e+30, out of range"),
])
def test_degenerate_physics_is_refused_by_the_schema(docs, path, value, expected):
    assert expected in _refused(_set(copy.deepcopy(docs["rf"]), path, value))


@pytest.mark.parametrize("literal,shown_as", [("NaN", "nan"), ("Infinity", "inf"), ("-Infinity", "-inf"),
                                              ("1e999", "inf")])
@pytest.mark.parametrize("field,path", [("metrics.loss", ("metrics", "loss")),
                                        ("config.validation_fraction", ("config", "validation_fraction")),
                                        ("config.device.alpha", ("config", "device", "alpha"))])
def test_nan_and_infinity_are_refused_everywhere(docs, tmp_path, literal, shown_as, field, path):
    doc = _set(copy.deepcopy(docs["rf-network"]), path, "@@")
    target = _write(tmp_path, json.dumps(doc).replace('"@@"', literal))
    with pytest.raises(TopologyFileError, match=rf"{field.replace('[', '.').replace(']', '.')} is {shown_as}, "
                                                 rf"not a finite number"):
        load_topology(target)


def test_a_number_with_thousands_of_digits_is_one_sentence(docs, tmp_path):
    text = json.dumps(docs["rf"]).replace('"loss": 1.25', '"loss": ' + "9" * 5000)
    with pytest.raises(TopologyFileError, match="holds a number too long to read"):
        load_topology(_write(tmp_path, text))


# --- history, record sizes, versions ----------------------------------------------------------------------

def test_history_longer_than_the_epochs_is_refused(docs):
    doc = copy.deepcopy(docs["rigl"])
    doc["history"] = [[e, 1.0, 0.5, 0.5] for e in range(1, 3)]  # config.epochs is 1
    assert "history has 2 entries where at most 1 were expected (one per epoch of config.epochs = 1)" in _refused(doc)
    doc["history"] = [[1, 1.0, 0.5, 0.5, *range(100)]]
    assert "history[0] has 104 entries where at most 4" in _refused(doc)


def test_records_hold_a_bounded_number_of_values(docs):
    doc = copy.deepcopy(docs["rigl"])
    doc["metrics"]["junk"] = [0] * 200_000
    assert "metrics holds more than 100,000 values" in _refused(doc)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("kind", ["rf-network", "sparse-network"])
def test_multilayer_kinds_in_version_1_or_2_files_are_refused(docs, version, kind):
    doc = copy.deepcopy(docs[kind])
    doc["format_version"] = version
    assert f"format version {version} but kind '{kind}', which exists only from format version 3" in _refused(doc)


# --- messages: bounded, escaped ---------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["model", "dataset", "created", "format", "class_names"])
def test_long_strings_give_short_messages(docs, field):
    doc = copy.deepcopy(docs["rf"])
    long = "x" * 10_000_000
    if field == "class_names":
        doc["class_names"][1] = long
    else:
        doc[field] = long
    msg = _refused(doc)
    assert ELLIPSIS in msg and "x" * 100 not in msg, msg


def test_a_long_unknown_key_gives_a_short_message(docs):
    doc = copy.deepcopy(docs["rf"])
    doc["physics"]["\x1b[2J" + "k" * 100_000] = 1.0
    msg = _refused(doc)
    assert "physics has an unknown entry" in msg and "\x1b" not in msg and "\\x1b[2J" in msg, msg


def test_escape_sequences_in_keys_are_escaped(docs):
    doc = copy.deepcopy(docs["rf"])
    doc["versions"]["\x1b]0;owned\x07\u202e"] = 5
    msg = _refused(doc)
    assert "\x1b" not in msg and "\x07" not in msg and "\u202e" not in msg, msg
    assert "versions.\\x1b]0;owned\\x07\\u202e must be a string" in msg, msg


def test_cli_errors_are_one_bounded_escaped_line(docs, tmp_path, capsys):
    doc = copy.deepcopy(docs["rf"])
    doc["model"] = "\x1b[31m" + "m" * 10_000_000
    path = _write(tmp_path, json.dumps(doc), "\x1b[2Jcrafted\n.json")
    assert cli.main(["evaluate", str(path), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 350 and "\x1b" not in err, err


BARS = Path(__file__).parent / "data" / "dataset_bars.npz"  # 12 inputs (3 x 4), classes vertical, horizontal


def test_evaluate_prints_recorded_names_escaped(tmp_path, capsys):
    doc = _document("rf", 12, 2, (3, 4), ["vertical", "horizontal"])
    doc["dataset"] = "\x1b]0;title\x07bars"
    path = _write(tmp_path, json.dumps(doc))
    assert cli.main(["evaluate", str(path), "--dataset", str(BARS), "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "recorded 50.00 % on \\x1b]0;title\\x07bars test (not comparable)" in err, err
    assert "\x1b" not in err and "\x07" not in err, err
    doc["class_names"][0] = "\x1b[31mvertical\u202e"  # a class name differing from the dataset's
    path = _write(tmp_path, json.dumps(doc))
    assert cli.main(["evaluate", str(path), "--dataset", str(BARS), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "\\x1b[31mvertical" in err and "\x1b" not in err and "\u202e" not in err, err


def test_message_helpers():
    assert shown("a\x1b[31mb") == "'a\\x1b[31mb'" and shown("it's") == "'it\\'s'"
    assert shown("x" * 1000, 20) == "'" + "x" * 17 + ELLIPSIS + "'" and len(shown("x" * 10**7)) <= 60
    assert shown(1e39) == "1e+39" and shown(float("nan")) == "nan" and shown(True) == "true"
    assert escaped("café 中 \u202e\n") == "café 中 \\u202e\\x0a"
    long = sentence("start " + "y" * 10_000 + " the end.")
    assert len(long) <= 200 and long.startswith("start ") and long.endswith(" the end.") and ELLIPSIS in long
    assert sentence("two\nlines\x1b") == "two lines\\x1b"
    assert clipped("C:\\data\\set\x1b") == "C:\\data\\set\\x1b" and clipped("y" * 100, 10) == "y" * 9 + ELLIPSIS


@pytest.mark.parametrize("where,expected", [('"class_names": ["0", "', r"class_names\[1\] holds a lone surrogate"),
                                            ('"versions": {"', "versions has a key with a lone surrogate")])
def test_lone_surrogates_are_refused(docs, tmp_path, where, expected):
    text = json.dumps(docs["rigl"]).replace(where, where + "\\ud800", 1)
    assert text != json.dumps(docs["rigl"])
    with pytest.raises(TopologyFileError, match=expected):
        load_topology(_write(tmp_path, text))
