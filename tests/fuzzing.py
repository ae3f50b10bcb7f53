"""Fuzzing every file reader: mutated topology files and dataset files, each read in a bounded child process.

What is read
    Topology files (:func:`engine.io.topology.load_topology`, then the rebuilt model is run on mnist-mini-sized
    data) and dataset files (:func:`engine.data.load_dataset_file`: .npz, .csv, .h5). The seeds are REAL
    files: one export per topology kind trained for one epoch on part of the embedded mnist-mini set (made
    once per session, :func:`make_topology_seeds`), the single-layer ones relabelled as format version 2, every
    topology file in tests/data (version 1), the dataset fixtures in tests/data, a slice of mnist-mini and
    small float64 arrays like those of tests/test_datasets_files.py, each written as .npz, .h5 and .csv
    (:func:`dataset_seed_arrays`, :func:`csv_seed_texts`).

How a case is mutated
    Hypothesis draws the mutations (:func:`topology_cases`, :func:`dataset_strategies`): JSON-aware ones (a number
    replaced by 1e308, -1e39, NaN, Infinity, 0, -1 or a huge integer, sizes such as n_inputs or layer_sizes
    blown up, strings replaced by long or escape-laden ones, lists duplicated or truncated, keys deleted,
    version and kind swapped, nesting 100,000 deep) and byte-level ones (truncate, flip, splice). Datasets
    get array-level mutations (NaN, negative and huge values, odd dtypes and shapes, class names duplicated,
    empty or with escapes), .npy header rewrites (shapes of 2**40 or negative), zip bombs, HDF5 external
    storage, external links, soft-link loops and virtual datasets, CSV files with huge lines and odd cells.
    Hand-made cases (:func:`crafted_topology_cases`, :func:`crafted_dataset_cases`, with a 4 kB bzip2 zip bomb
    fixture in tests/data/fuzz) say what each must give. Hypothesis's repeats are skipped.

How a case is run
    A fork server (``python tests/fuzzing.py serve``, :class:`ForkServer`) imports the engine once, runs torch
    on one thread, and forks one child per case. The child caps its address space (its size at the fork plus
    :data:`MEMORY_CAP_BYTES`) and sets an alarm, runs the reader, and reports through a pipe one outcome:
    ``accepted`` / ``refused`` (the reader's documented error, with its message) / ``crash`` (any other
    exception, with the traceback) / ``memory`` (MemoryError, or a failed allocation) / ``timeout`` (killed at
    the hard limit) / ``signal`` (killed by a signal). The server adds the child's CPU time and its peak RSS
    (``wait4``, the peak reset at the child's start) above the child's RSS at its start.

What counts as a failure (:func:`problems`)
    Anything but ``accepted`` or ``refused``; a refusal whose message is not one line of at most
    :data:`MAX_MESSAGE_CHARS` characters (the file's path not counted) without control characters; an
    accepted topology whose model holds non-finite numbers, gives non-finite outputs, or cannot be written back
    out and read again; an accepted dataset with non-finite features or labels that do not match its classes;
    a refusal costing more than :data:`REFUSE_CPU_S` of CPU or :data:`REFUSE_RSS_BYTES` of RSS growth; any
    case costing more than :data:`CASE_CPU_S` of CPU; a hand-made case with the wrong outcome.

Run a campaign (``make fuzz``)::

    python tests/fuzzing.py --topologies 1000 --datasets 300 --out results/fuzz
    python tests/fuzzing.py --replay results/fuzz/failures          # the saved failures again
    python tests/fuzzing.py --make-bomb-fixture                     # rewrite tests/data/fuzz/bomb_4gb.npz

It prints the counts per outcome, the worst RSS growth, the slowest refusal and the first failing cases of each
category, saves each failing file with a .txt description under ``OUT/failures/``, the figures in
``OUT/summary.json`` and one line per case in ``OUT/records.jsonl``; it exits with status 1 if any case failed.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import math
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = HERE / "data"
FUZZ_FIXTURES = FIXTURES / "fuzz"

#: The address space a case may add to the server's, and the RSS above the server's that counts as too much.
MEMORY_CAP_BYTES = int(1.5 * 1024**3)  # (the RSS growth measured is what the case adds to the interpreter)
#: A refusal must cost less than this, CPU seconds and RSS bytes above the server's.
REFUSE_CPU_S = 2.0
REFUSE_RSS_BYTES = 500 * 1024**2
#: Any case (reading and, for an accepted topology, one evaluation) must cost less CPU than this.
CASE_CPU_S = 5.0
#: The child is killed after this many wall-clock seconds (a hang; CPU is shared, so this is generous).
HARD_LIMIT_S = 30.0
#: Longest refusal message, the file's path not counted (a quoted value may take 200 of these).
MAX_MESSAGE_CHARS = 400
#: Samples the rebuilt model of an accepted topology is run on (the size of mnist-mini's test set).
EVAL_SAMPLES = 1000

OUTCOMES = ("accepted", "refused", "crash", "memory", "timeout", "signal")


# ---------------------------------------------------------------------------------------------------------
# The fork server: one interpreter with the engine imported, one forked child per case
# ---------------------------------------------------------------------------------------------------------

def _status_kb(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _one_line(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _is_alloc_failure(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "std::bad_alloc" in text \
        or "Unable to allocate" in text or "Cannot allocate memory" in text


def _finite_tensors(tensors) -> bool:
    import torch

    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def _check_topology(path: str, mini) -> dict:
    """Load a topology file; if accepted, run its model on mnist-mini-sized data and check the numbers."""
    import torch
    from engine.io.topology import load_topology

    topo = load_topology(path)
    info: dict[str, Any] = {"kind": topo.kind, "n_inputs": topo.n_inputs, "n_classes": topo.n_classes}
    model = topo.model
    if not _finite_tensors(list(model.parameters()) + list(model.buffers())):
        info["invalid"] = "the rebuilt model holds non-finite numbers"
        return info
    if mini is not None and topo.n_inputs == mini.n_inputs:
        x = mini.test_x[:EVAL_SAMPLES]
    else:
        n = max(1, min(EVAL_SAMPLES, 784 * EVAL_SAMPLES // max(topo.n_inputs, 1)))
        x = torch.rand(n, topo.n_inputs, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        out = model(x)
    if tuple(out.shape) != (len(x), topo.n_classes):
        info["invalid"] = f"the model gives outputs of shape {tuple(out.shape)} for {len(x)} samples"
    elif not bool(torch.isfinite(out).all()):
        info["invalid"] = "the model gives non-finite outputs on mnist-mini-sized data"
    else:
        info["invalid"] = _reexport_problem(topo, path)
    return info


def _reexport_problem(topo, path: str) -> Optional[str]:
    """An accepted file must survive what the app does next: write it back out and read that again."""
    from engine.io.topology import load_topology, write_topology

    again = Path(path).with_name(Path(path).stem + "-again.json")
    try:
        write_topology(topo, again)
        load_topology(again)
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        return _one_line(f"writing it back out and reading that again fails: {type(exc).__name__}: {exc}", 300)
    finally:
        again.unlink(missing_ok=True)
    return None


def _check_probe(what: str, mini) -> dict:
    """Misbehaviour on purpose, so the tests can check that the harness sees each kind of failure."""
    if what == "memory":
        return {"size": len(bytearray(8 * 1024**3))}
    if what == "timeout":
        while True:
            pass
    if what == "signal":
        os.kill(os.getpid(), signal.SIGSEGV)
    if what == "crash":
        raise KeyError("probe")
    return {}


def _check_dataset(path: str, mini) -> dict:
    import torch
    from engine.data import load_dataset_file

    ds = load_dataset_file(path)
    info: dict[str, Any] = {"n_inputs": int(ds.n_inputs), "n_classes": int(ds.n_classes),
                            "samples": int(len(ds.train_y) + len(ds.test_y))}
    if not _finite_tensors([ds.train_x, ds.test_x]):
        info["invalid"] = "the dataset holds non-finite features"
    elif ds.train_x.shape[1] != ds.test_x.shape[1] or ds.train_y.dtype != torch.int64:
        info["invalid"] = "the dataset's splits do not match"
    elif int(ds.train_y.max()) >= ds.n_classes or len(ds.class_names) != ds.n_classes:
        info["invalid"] = "the dataset's labels or class names do not match its class count"
    return info


def _refusals(kind: str) -> tuple:
    from engine.data import DataNotFoundError, DatasetFileError
    from engine.io.topology import TopologyFileError

    return {"topology": (TopologyFileError,), "dataset": (DatasetFileError, DataNotFoundError)}.get(kind, ())


def _reset_peak_rss() -> None:
    """Start this process's peak RSS (VmHWM, and so wait4's ru_maxrss) afresh from its RSS now (Linux)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass


def _child(req: dict, out_fd: int, mini) -> None:
    """Run one case under the caps and write its outcome to ``out_fd`` (never returns)."""
    import resource

    result: dict[str, Any]
    try:
        _reset_peak_rss()
        os.write(out_fd, f"{_status_kb('VmRSS')}\n".encode())  # the RSS the case's growth is measured from
        extra = int(req.get("memory_cap", MEMORY_CAP_BYTES))
        limit = _status_kb("VmSize") * 1024 + extra
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        signal.alarm(int(math.ceil(req.get("hard_limit_s", HARD_LIMIT_S))))
        check = {"topology": _check_topology, "dataset": _check_dataset, "probe": _check_probe}[req["kind"]]
        t0 = time.perf_counter()
        try:
            info = check(req["path"], mini)
            result = {"outcome": "accepted", **info}
        except _refusals(req["kind"]) as exc:
            result = {"outcome": "refused", "message": str(exc), "error": type(exc).__name__}
        except BaseException as exc:  # noqa: BLE001 - everything else is what the fuzzer is looking for
            import traceback

            outcome = "memory" if _is_alloc_failure(exc) else "crash"
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            result = {"outcome": outcome, "error": type(exc).__name__, "message": _one_line(str(exc), 600),
                      "traceback": _one_line(text, 6000)}
        result["wall_s"] = time.perf_counter() - t0
        data = json.dumps(result, ensure_ascii=True).encode()
    except BaseException as exc:  # noqa: BLE001 - even reporting failed (e.g. memory): say so briefly
        data = json.dumps({"outcome": "memory" if _is_alloc_failure(exc) else "crash",
                           "error": type(exc).__name__, "message": "reporting the outcome failed"}).encode()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(out_fd, view):]
    finally:
        os._exit(0)


def _read_all(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything written to ``fd`` until EOF; (data, timed_out)."""
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return b"".join(chunks), True
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)


def run_case_here(req: dict, mini=None) -> dict:
    """Fork a child that runs one case (in this process: the server calls this); returns its outcome."""
    baseline_kb = _status_kb("VmRSS")
    r, w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(req, w, mini)
    os.close(w)
    hard = float(req.get("hard_limit_s", HARD_LIMIT_S))
    data, timed_out = _read_all(r, t0 + hard + 2)
    os.close(r)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.monotonic() - t0
    start, _, data = data.partition(b"\n")
    start_kb = int(start) if start.isdigit() else baseline_kb
    try:
        result = json.loads(data.decode()) if data else None
    except ValueError:
        result = None
    if result is None:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        if timed_out or sig == signal.SIGALRM:
            result = {"outcome": "timeout", "message": f"killed after {elapsed:.1f} s"}
        elif sig is not None:
            result = {"outcome": "signal", "message": f"killed by {signal.Signals(sig).name}"}
        else:
            result = {"outcome": "crash", "message": f"the child exited with status {os.WEXITSTATUS(status)} "
                                                     f"and no report"}
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["elapsed_s"] = elapsed
    result["rss_above_kb"] = max(0, usage.ru_maxrss - start_kb)
    result["baseline_kb"] = baseline_kb
    return result


def run_cli_here(argv: list[str], hard_limit_s: float = HARD_LIMIT_S) -> dict:
    """Run ``rfexplorer-cli ARGV`` (engine.cli.main) in a forked child, as the console script would: its exit
    status, and its stdout and stderr together (an uncaught exception prints its traceback, as Python does)."""
    with tempfile.TemporaryFile() as out:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                signal.alarm(int(math.ceil(hard_limit_s)))
                from engine.cli import main as cli_main

                code = cli_main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - what the interpreter would print
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        text = out.read().decode("utf-8", "backslashreplace")
    rc = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    return {"rc": rc, "output": text}


def _serve() -> int:
    """The fork server's loop: one JSON request per stdin line, one JSON outcome per line on the real stdout."""
    proto = os.fdopen(os.dup(1), "w", encoding="ascii")
    os.dup2(2, 1)  # whatever a reader prints goes to stderr, never into the protocol
    import torch

    torch.set_num_threads(1)
    import engine.data
    import engine.experiments.evaluation  # noqa: F401 - imported once here, not in every child
    import engine.io.topology  # noqa: F401
    import h5py  # noqa: F401

    mini = engine.data.load_embedded()
    proto.write(json.dumps({"ready": True, "baseline_kb": _status_kb("VmRSS")}) + "\n")
    proto.flush()
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") == "seeds":
            result = _make_seeds_in_child(req["dir"])
        elif req.get("op") == "cli":
            result = run_cli_here(req["argv"])
        else:
            result = run_case_here(req, mini)
        proto.write(json.dumps(result, ensure_ascii=True) + "\n")
        proto.flush()
    return 0


def _make_seeds_in_child(folder: str) -> dict:
    """Train the seed exports in a forked child (training threads never touch the server)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            make_topology_seeds(Path(folder))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return {"ok": os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0}


class ForkServer:
    """A ``tests/fuzzing.py serve`` process; :meth:`run` sends it one case and returns the outcome."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "serve"], cwd=REPO, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="ascii")
        hello = json.loads(self.proc.stdout.readline() or "{}")
        if not hello.get("ready"):
            raise RuntimeError("the fuzzing fork server did not start (see stderr)")
        self.baseline_kb = int(hello["baseline_kb"])

    def request(self, req: dict) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fuzzing fork server died")
        return json.loads(line)

    def run(self, kind: str, path: Path, **limits) -> dict:
        return self.request({"kind": kind, "path": str(path), **limits})

    def cli(self, *argv: str) -> dict:
        """``rfexplorer-cli ARGV`` in a forked child of the server: {'rc': exit status, 'output': text}."""
        return self.request({"op": "cli", "argv": list(argv)})

    def make_seeds(self, folder: Path) -> None:
        if not self.request({"op": "seeds", "dir": str(folder)}).get("ok"):
            raise RuntimeError("training the seed topology exports failed")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "ForkServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------------------
# Judging an outcome
# ---------------------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def message_problem(message: str, path: str) -> Optional[str]:
    """Why a refusal's message is not one short sentence naming the file, or None."""
    text = message.replace(path, "<file>")
    if _CONTROL.search(text):
        return f"the message holds a control character: {text[:120]!r}"
    if len(text) > MAX_MESSAGE_CHARS:
        return f"the message is {len(text)} characters long (path not counted): {text[:120]!r}"
    if not text.strip():
        return "the message is empty"
    if Path(path).name not in message:
        return f"the message does not name the file: {text[:120]!r}"
    return None


def problems(result: dict, path: str, *, expect: Optional[str] = None) -> list[str]:
    """What is wrong with one case's outcome (empty: it passed). ``expect``: 'refused' or 'accepted' if known."""
    out, found = result["outcome"], []
    if out not in ("accepted", "refused"):
        found.append(f"{out}: {result.get('error', '')} {result.get('message', '')}".strip())
    if out == "refused":
        bad = message_problem(result.get("message", ""), path)
        if bad:
            found.append(bad)
        if result["cpu_s"] > REFUSE_CPU_S:
            found.append(f"slow refusal: {result['cpu_s']:.2f} s of CPU")
        if result["rss_above_kb"] * 1024 > REFUSE_RSS_BYTES:
            found.append(f"costly refusal: {result['rss_above_kb'] / 1024:.0f} MB RSS above the baseline")
    if out == "accepted" and result.get("invalid"):
        found.append(f"accepted but invalid: {result['invalid']}")
    if out in ("accepted", "refused") and result["cpu_s"] > CASE_CPU_S:
        found.append(f"slow: {result['cpu_s']:.2f} s of CPU")
    if out in ("accepted", "refused") and result["rss_above_kb"] * 1024 > MEMORY_CAP_BYTES:
        found.append(f"memory: {result['rss_above_kb'] / 1024:.0f} MB RSS above the baseline")
    if expect and out in ("accepted", "refused") and out != expect:
        found.append(f"{out}, but it should be {expect}" + (f" ({result.get('message', '')[:200]})"
                                                            if out == "refused" else ""))
    return found



# ---------------------------------------------------------------------------------------------------------
# Seeds: real exports of every kind and real datasets of every format
# ---------------------------------------------------------------------------------------------------------

#: One training run per topology kind (and RF model flavour), one epoch on a slice of mnist-mini.
SEED_RUNS = {
    "rf-perceptron": {"model": "rf"},
    "rf-input": {"model": "rf-input"},
    "rf-network": {"model": "rf", "hidden": (8,)},
    "sparse-perceptron": {"model": "rigl"},
    "dense": {"model": "dense"},
    "sparse-network": {"model": "prune", "hidden": (8,)},
}
SEED_TRAIN_SAMPLES = 500


def make_topology_seeds(folder: Path) -> list[Path]:
    """Train and export one network per entry of :data:`SEED_RUNS` into ``folder`` (about 1 s each)."""
    import dataclasses

    from engine.config.run_config import RunConfig
    from engine.data import load_embedded
    from engine.io.topology import export_result
    from engine.training.loop import run_training

    folder.mkdir(parents=True, exist_ok=True)
    full = load_embedded()
    ds = dataclasses.replace(full, train_x=full.train_x[:SEED_TRAIN_SAMPLES],
                             train_y=full.train_y[:SEED_TRAIN_SAMPLES])
    paths = []
    for name, run in SEED_RUNS.items():
        cfg = RunConfig(epochs=1, resonators_per_chain=10, **run)
        result = run_training(cfg, dataset=ds, snapshot_interval_s=float("inf"))
        paths.append(export_result(result, folder / f"{name}.json", csv_path=False)[0])
    return paths


def topology_seed_texts(folder: Path) -> dict[str, bytes]:
    """The seed files by name: the exports in ``folder`` (version 3), the single-layer ones relabelled as
    version 2 (which had only those kinds), and every topology file in tests/data (version 1)."""
    seeds = {f"v3-{p.stem}": p.read_bytes() for p in sorted(folder.glob("*.json"))}
    for name, text in list(seeds.items()):
        doc = json.loads(text)
        if doc["kind"] in ("rf-perceptron", "sparse-perceptron"):  # the multilayer kinds came with version 3
            doc["format_version"] = 2
            doc.get("physics", {}).pop("stno", None)
            seeds["v2-" + name[3:]] = json.dumps(doc, indent=1).encode()
    for p in sorted(FIXTURES.glob("topology_*.json")):
        seeds[p.stem] = p.read_bytes()
    return Seeds(seeds)


def _mini_arrays(n_train: int = 300, n_test: int = 100) -> dict[str, np.ndarray]:
    from engine.data import embedded_path

    with np.load(embedded_path()) as z:
        return {"train_x": z["train_images"][:n_train].reshape(n_train, -1),
                "train_y": z["train_labels"][:n_train].astype(np.int64),
                "test_x": z["test_images"][:n_test].reshape(n_test, -1),
                "test_y": z["test_labels"][:n_test].astype(np.int64),
                "class_names": np.array([str(c) for c in range(10)]), "image_shape": np.array([28, 28])}


def _base_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"train_x": rng.random((30, 6)) * 3, "train_y": np.arange(30) % 3,
            "test_x": rng.random((9, 6)) * 3, "test_y": np.arange(9) % 3,
            "class_names": np.array(["alpha", "beta", "gamma"])}


def dataset_seed_arrays() -> dict[str, dict[str, np.ndarray]]:
    """Array sets the dataset cases start from: the .npz fixture, a slice of mnist-mini, small float64 data."""
    with np.load(FIXTURES / "dataset_bars.npz") as z:
        bars = {k: z[k] for k in z.files}
    return Seeds({"bars": bars, "mini": _mini_arrays(), "base": _base_arrays()})


H5_NAMES = {"train_x": "X_train", "train_y": "Y_train", "test_x": "X_test", "test_y": "Y_test",
            "class_names": "class_names"}


def csv_text(arrays: dict[str, np.ndarray], header: bool = True) -> str:
    """A dataset as the .csv layout: the rows of both splits, label last (header optional)."""
    x = np.concatenate([arrays["train_x"], arrays["test_x"]]).reshape(-1, arrays["train_x"].shape[-1])
    y = np.concatenate([arrays["train_y"], arrays["test_y"]])
    lines = [",".join(f"f{i}" for i in range(x.shape[1])) + ",label"] if header else []
    lines += [",".join(f"{v:g}" for v in row) + f",{int(label)}" for row, label in zip(x, y)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------------

class Seeds(dict):
    """Seed files or arrays by name, with a short repr (Hypothesis prints its strategies' arguments)."""

    def __repr__(self) -> str:
        return f"<{len(self)} seeds: {', '.join(self)}>"


@dataclass
class Case:
    """One file to read: its name (the suffix picks the reader), its bytes and what was done to make it."""

    kind: str  #: 'topology' or 'dataset'
    name: str
    data: bytes = b""
    label: str = ""
    expect: Optional[str] = None  #: 'refused' or 'accepted' where the case knows; None for random mutations
    build: Optional[Callable[[Path], None]] = field(default=None, repr=False)  #: writes the file itself (h5)

    def __repr__(self) -> str:  # short: Hypothesis prints the cases it draws
        return f"Case({self.kind!r}, {self.name!r}, <{len(self.data):,} bytes>, {self.label[:200]!r})"

    def _repr_pretty_(self, printer, cycle) -> None:  # Hypothesis's printer looks for this before the fields
        printer.text(repr(self))

    def write(self, folder: Path) -> Path:
        path = folder / self.name
        if self.build is not None:
            self.build(path)
        else:
            path.write_bytes(self.data)
        return path


@dataclass(frozen=True)
class Raw:
    """JSON text put into a document as is (deep nesting, 5,000-digit integers, 1e999)."""

    text: str
    label: str


def dumps_with_raw(doc: Any) -> str:
    """``json.dumps`` (NaN and Infinity allowed) with every :class:`Raw` value spliced in as its text."""
    raws: list[Raw] = []

    def swap(v):
        if isinstance(v, Raw):
            raws.append(v)
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(doc), indent=1, allow_nan=True)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{i}@@"', raw.text)
    return text


ESCAPES = "\x00\n\r\t\x1b[31m\u202e\ud800\\\"'<>&%s{}"
#: Values a field is replaced with.
NASTY_VALUES = [1e308, -1e308, -1e39, 1e39, float("nan"), float("inf"), float("-inf"), 0, -1, 0.5, -0.0, 5e-324,
                2**31, 2**53 + 1, 2**63, 2**64 + 7, 10**30, -(10**30), 10**400, "", "x" * 100_000, ESCAPES * 50,
                "NaN", "784", None, True, False, [], {}, [[]], {"a": 1}, [None] * 3,
                Raw("[" * 100_000 + "]" * 100_000, "nesting 100,000 deep"), Raw("1e999", "1e999"),
                Raw("-1e999", "-1e999"), Raw("1" + "0" * 5000, "a 5,001-digit integer"),
                Raw("0." + "0" * 5000 + "1", "a 5,003-digit fraction")]
#: Sizes a count or shape entry is blown up to.
HUGE_SIZES = [0, -1, 10**6, 10**7 + 1, 2**31, 2**32 + 1, 2**53 + 1, 2**63 - 1, 2**64, 10**30, 1e308, 784.5,
              Raw("1e999", "1e999")]
#: Keys whose values (or entries) are sizes.
SIZE_KEYS = {"n_inputs", "n_classes", "layer_sizes", "layer_ks", "resonators_per_chain", "image_shape", "epochs",
             "batch_size", "hidden", "k", "epochs_completed", "seed"}
KIND_VALUES = ["rf-perceptron", "sparse-perceptron", "rf-network", "sparse-network", "RF-PERCEPTRON", "", None, 3]
VERSION_VALUES = [0, 1, 2, 3, 4, 99, -1, "3", 3.0, 3.5, 1e308, None, True, [3]]
MODEL_VALUES = ["rf", "rf-input", "rf-frozen", "dense", "prune", "random", "rigl", "set", "mlp", "", "../rf"]


def _describe(v: Any) -> str:
    if isinstance(v, Raw):
        return v.label
    if isinstance(v, str) and len(v) > 30:
        return f"a {len(v):,}-character string"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 10**20:
        return f"a {len(str(abs(v)))}-digit integer"
    text = repr(v)
    return text if len(text) <= 30 else text[:27] + "..."


def interesting_paths(doc: Any, path: tuple = ()) -> list[tuple]:
    """Every dict entry and the first, middle and last entry of every list, recursively."""
    out = []
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list) and doc:
        picks = sorted({0, len(doc) // 2, len(doc) - 1})
        items = [(i, doc[i]) for i in picks]
    else:
        return out
    for key, value in items:
        out.append(path + (key,))
        out.extend(interesting_paths(value, path + (key,)))
    return out


def _where(path: tuple) -> str:
    return "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)


def _parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _op_set(draw, doc, paths) -> str:
    path = draw(st.sampled_from(paths))
    value = draw(st.sampled_from(NASTY_VALUES))
    _parent(doc, path)[path[-1]] = copy.deepcopy(value)
    return f"{_where(path)} = {_describe(value)}"


def _op_size(draw, doc, paths) -> str:
    sized = [p for p in paths if p[-1] in SIZE_KEYS or (len(p) > 1 and p[-2] in SIZE_KEYS)]
    if not sized:
        return _op_set(draw, doc, paths)
    path = draw(st.sampled_from(sized))
    value = draw(st.sampled_from(HUGE_SIZES))
    _parent(doc, path)[path[-1]] = copy.deepcopy(value)
    return f"{_where(path)} = {_describe(value)}"


def _op_delete(draw, doc, paths) -> str:
    path = draw(st.sampled_from(paths))
    del _parent(doc, path)[path[-1]]
    return f"{_where(path)} deleted"


def _op_list(draw, doc, paths) -> str:
    lists = [p for p in paths if isinstance(_parent(doc, p)[p[-1]], list)]
    if not lists:
        return _op_set(draw, doc, paths)
    path = draw(st.sampled_from(lists))
    items = _parent(doc, path)[path[-1]]
    how = draw(st.sampled_from(["duplicated", "truncated", "emptied", "reversed", "one entry repeated"]))
    new = {"duplicated": items + copy.deepcopy(items), "truncated": items[:max(0, len(items) - 1)],
           "emptied": [], "reversed": items[::-1], "one entry repeated": items + copy.deepcopy(items[:1]) * 100}
    _parent(doc, path)[path[-1]] = new[how]
    return f"{_where(path)} {how}"


def _op_string(draw, doc, paths) -> str:
    strings = [p for p in paths if isinstance(_parent(doc, p)[p[-1]], str)]
    if not strings:
        return _op_set(draw, doc, paths)
    path = draw(st.sampled_from(strings))
    old = _parent(doc, path)[path[-1]]
    how = draw(st.sampled_from(["long", "escapes", "repeated", "emptied", "upper-cased"]))
    new = {"long": "é" * 300_000, "escapes": ESCAPES + old, "repeated": (old * 1000)[:1_000_000], "emptied": "",
           "upper-cased": old.upper()}[how]
    _parent(doc, path)[path[-1]] = new
    return f"{_where(path)} string {how}"


SCALES = [-1, 0, 1 + 1e-6, 1 - 1e-3, 1.5, 1e-30, 1e30, 1e300, 1e-300]


def _op_nudge(draw, doc, paths) -> str:
    """A plausible-looking change that only the cross-checks or the physics can catch: a number scaled, an
    integer moved by one."""
    numbers = [p for p in paths if isinstance(_parent(doc, p)[p[-1]], (int, float))
               and not isinstance(_parent(doc, p)[p[-1]], bool)]
    if not numbers:
        return _op_set(draw, doc, paths)
    path = draw(st.sampled_from(numbers))
    old = _parent(doc, path)[path[-1]]
    if isinstance(old, int) and draw(st.booleans()):
        delta = draw(st.sampled_from([-1, 1, -old, old]))
        _parent(doc, path)[path[-1]] = old + delta
        return f"{_where(path)} {old} -> {old + delta}"
    factor = draw(st.sampled_from(SCALES))
    _parent(doc, path)[path[-1]] = old * factor
    return f"{_where(path)} x {factor:g}"


def _op_envelope(draw, doc, paths) -> str:
    key, pool = draw(st.sampled_from([("kind", KIND_VALUES), ("format_version", VERSION_VALUES),
                                      ("model", MODEL_VALUES), ("format", ["rfexplorer-sweep", "", None])]))
    value = draw(st.sampled_from(pool))
    doc[key] = copy.deepcopy(value)
    return f"$.{key} = {_describe(value)}"


JSON_OPS = [_op_set, _op_set, _op_size, _op_size, _op_delete, _op_list, _op_string, _op_envelope, _op_nudge,
            _op_nudge, _op_nudge]


def _byte_truncate(draw, data: bytes, other: bytes) -> tuple[bytes, str]:
    at = len(data) * draw(st.integers(0, 999)) // 1000
    return data[:at], f"truncated to {at} of {len(data)} bytes"


TEXT_BYTES = b'0123456789-.eE{}[]",:tfn \n\\'


def _byte_flip(draw, data: bytes, other: bytes) -> tuple[bytes, str]:
    """Up to 8 bytes changed: either XORed with anything, or replaced by bytes JSON and CSV are made of."""
    buf = bytearray(data)
    n = draw(st.integers(1, 8))
    textual = draw(st.booleans())
    at = []
    for _ in range(n):
        i = draw(st.integers(0, len(buf) - 1))
        at.append(i)
        buf[i] = draw(st.sampled_from(TEXT_BYTES)) if textual else buf[i] ^ draw(st.integers(1, 255))
    return bytes(buf), f"{n} byte(s) {'replaced by text bytes' if textual else 'flipped'} at {sorted(at)[:8]}"


def _byte_splice(draw, data: bytes, other: bytes) -> tuple[bytes, str]:
    at = draw(st.integers(0, len(data)))
    start = draw(st.integers(0, max(0, len(other) - 1)))
    length = draw(st.sampled_from([1, 16, 256, 4096, 65536]))
    return data[:at] + other[start:start + length] + data[at:], f"{length} bytes of another file spliced at {at}"


def _byte_text(draw, data: bytes, other: bytes) -> tuple[bytes, str]:
    how = draw(st.sampled_from(["BOM", "UTF-16", "invalid UTF-8", "duplicate key", "trailing garbage",
                                "NUL bytes"]))
    if how == "BOM":
        return b"\xef\xbb\xbf" + data, "a UTF-8 BOM put first"
    if how == "UTF-16":
        return data.decode("utf-8", "replace").encode("utf-16"), "re-encoded as UTF-16"
    if how == "invalid UTF-8":
        at = draw(st.integers(0, len(data)))
        return data[:at] + b"\xff\xfe\xc3" + data[at:], "invalid UTF-8 inserted"
    if how == "duplicate key":
        at = data.find(b"{") + 1
        return data[:at] + b'"n_inputs": 1e999, "kind": "rf-network",' + data[at:], "duplicate keys inserted"
    if how == "NUL bytes":
        return data.replace(b",", b",\x00", 3), "NUL bytes inserted"
    return data + b"}]} garbage", "garbage appended"


BYTE_OPS = [_byte_truncate, _byte_flip, _byte_splice]


@st.composite
def topology_cases(draw, seeds: dict[str, bytes]) -> Case:
    """A mutated topology file: 1-3 JSON mutations of a seed, then sometimes one byte-level mutation."""
    name = draw(st.sampled_from(sorted(seeds)))
    doc = json.loads(seeds[name])
    labels = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(JSON_OPS))
        paths = interesting_paths(doc)
        try:
            labels.append(op(draw, doc, paths) if paths else "nothing left to mutate")
        except (KeyError, IndexError, TypeError, OverflowError) as exc:  # e.g. a path into a replaced value
            labels.append(f"({op.__name__} skipped: {type(exc).__name__})")
    data = dumps_with_raw(doc).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 3)) == 0:
        op = draw(st.sampled_from(BYTE_OPS + [_byte_text]))
        data, text = op(draw, data, seeds[draw(st.sampled_from(sorted(seeds)))])
        labels.append(text)
    return Case("topology", "topology.json", data, f"{name}: " + "; ".join(labels))


# Array-level mutations (npz and h5) ----------------------------------------------------------------------

ODD_DTYPES = [np.float16, np.float32, np.int8, np.uint64, np.bool_, np.complex128, "U8", "S8", "M8[s]", ">f8",
              [("a", "<f4"), ("b", "<f4")], object]
ARRAY_VALUES = [float("nan"), float("inf"), float("-inf"), -1.0, 1e308, -1e308, 2.0**62, 0.5, 1e-320]
LABEL_VALUES = [-1, 2**40, 2**62, 10, 255, -(2**63)]
CLASS_NAME_SETS = {
    "duplicated": lambda n: ["same"] * n, "empty": lambda n: [""] * n,
    "escape-laden": lambda n: [ESCAPES.replace("\ud800", "") + str(i) for i in range(n)],
    "100,000 characters each": lambda n: ["n" * 100_000 + str(i) for i in range(n)],
    "one too few": lambda n: [str(i) for i in range(n - 1)], "one too many": lambda n: [str(i) for i in range(n + 1)],
    "right-to-left": lambda n: ["\u202e" + str(i) for i in range(n)],
}
IMAGE_SHAPES = [[0, 784], [-28, -28], [2**40, 2**40], [float("nan"), 1.0], [28.0, 28.0], [28, 28, 1], [1, 12],
                [2**32, 2**32], [3, 4], [1]]
X_KEYS, Y_KEYS = ("train_x", "test_x"), ("train_y", "test_y")


def _arr_value(draw, arrays) -> str:
    key = draw(st.sampled_from([k for k in X_KEYS + Y_KEYS if k in arrays]))
    a = np.array(arrays[key], dtype=np.float64)
    if not a.size:
        return f"{key} left as it is"
    i = draw(st.integers(0, a.size - 1))
    v = draw(st.sampled_from(ARRAY_VALUES))
    a.flat[i] = v
    arrays[key] = a
    return f"{key} as float64 with entry {i} = {v!r}"


def _arr_label(draw, arrays) -> str:
    key = draw(st.sampled_from([k for k in Y_KEYS if k in arrays]))
    a = np.array(arrays[key], dtype=np.int64)
    i = draw(st.integers(0, a.size - 1))
    v = draw(st.sampled_from(LABEL_VALUES))
    a.flat[i] = v
    arrays[key] = a
    return f"{key}[{i}] = {v}"


def _arr_dtype(draw, arrays) -> str:
    key = draw(st.sampled_from([k for k in X_KEYS + Y_KEYS if k in arrays]))
    dtype = draw(st.sampled_from(ODD_DTYPES))
    try:
        arrays[key] = arrays[key].astype(dtype)
    except (TypeError, ValueError):
        arrays[key] = np.zeros(arrays[key].shape, dtype=dtype)
    return f"{key} as dtype {np.dtype(dtype)}"


def _arr_shape(draw, arrays) -> str:
    key = draw(st.sampled_from([k for k in X_KEYS + Y_KEYS if k in arrays]))
    a = arrays[key]
    how = draw(st.sampled_from(["3-D", "1-D", "no rows", "transposed", "one column less", "0-D", "rows doubled"]))
    new = {"3-D": lambda: a.reshape(a.shape[0], 1, -1) if a.size else a[None], "1-D": lambda: a.ravel(),
           "no rows": lambda: a[:0], "transposed": lambda: a.T, "one column less": lambda: a[..., :-1],
           "0-D": lambda: np.array(a.ravel()[0] if a.size else 0), "rows doubled": lambda: np.concatenate([a, a])}
    arrays[key] = np.ascontiguousarray(new[how]())
    return f"{key} {how}"


def _arr_delete(draw, arrays) -> str:
    key = draw(st.sampled_from(sorted(arrays)))
    del arrays[key]
    return f"{key} deleted"


def _arr_class_names(draw, arrays) -> str:
    try:
        n = int(np.clip(np.nanmax(np.asarray(arrays["train_y"], dtype=np.float64)), 1, 50)) + 1
    except (KeyError, ValueError, TypeError):
        n = 3
    how = draw(st.sampled_from(sorted(CLASS_NAME_SETS) + ["invalid UTF-8 bytes", "numbers", "2-D"]))
    if how == "invalid UTF-8 bytes":
        arrays["class_names"] = np.array([b"\xff\xfe" + bytes([65 + i % 26]) for i in range(n)])
    elif how == "numbers":
        arrays["class_names"] = np.arange(n)
    elif how == "2-D":
        arrays["class_names"] = np.array([[str(i)] for i in range(n)])
    else:
        arrays["class_names"] = np.array(CLASS_NAME_SETS[how](n))
    return f"class_names {how}"


def _arr_image_shape(draw, arrays) -> str:
    shape = draw(st.sampled_from(IMAGE_SHAPES))
    arrays["image_shape"] = np.array(shape)
    return f"image_shape = {shape}"


ARRAY_OPS = [_arr_value, _arr_value, _arr_label, _arr_dtype, _arr_shape, _arr_delete, _arr_class_names,
             _arr_image_shape]


def _mutated_arrays(draw, seeds) -> tuple[dict, list[str]]:
    name = draw(st.sampled_from(sorted(seeds)))
    arrays = {k: np.array(v) for k, v in seeds[name].items()}
    labels = [name]
    for _ in range(draw(st.integers(0, 2))):
        if not any(k in arrays for k in X_KEYS + Y_KEYS):
            break
        op = draw(st.sampled_from(ARRAY_OPS))
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # casts of NaN and of huge values are the point here
                labels.append(op(draw, arrays))
        except (ValueError, TypeError, IndexError, OverflowError) as exc:  # a mutation that does not apply
            labels.append(f"({op.__name__} skipped: {type(exc).__name__})")
    return arrays, labels


# .npz ----------------------------------------------------------------------------------------------------

def npz_bytes(arrays: dict, compressed: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


NPY_SHAPES = ["(1099511627776, 784)", "(-1, 784)", "(4611686018427387904, 4611686018427387904)", "()", "(0,)",
              "(1000000000000000000000000000000,)", "(1, 1099511627776)", "(30, -6)", "(2147483648, 2147483648)"]
NPY_DESCRS = ["'|O'", "'<U1000000000'", "'|V1000000000'", "'>f8'", "'<c16'", "'<M8[s]'", "[('a', '<f4')]", "'<f3'"]


def rewrite_npy_header(npy: bytes, *, shape: Optional[str] = None, descr: Optional[str] = None,
                       fortran: Optional[bool] = None) -> bytes:
    """An .npy file with its header's shape, descr or fortran_order text replaced (the data left as it was)."""
    major = npy[6]
    size_len = 2 if major == 1 else 4
    (hlen,) = struct.unpack("<H" if size_len == 2 else "<I", npy[8:8 + size_len])
    start = 8 + size_len
    header = npy[start:start + hlen].decode("latin1")
    if shape is not None:
        header = re.sub(r"'shape': \([^)]*\)", f"'shape': {shape}", header)
    if descr is not None:
        header = re.sub(r"'descr': ('[^']*'|\[.*?\])(?=, 'fortran)", f"'descr': {descr}", header)
    if fortran is not None:
        header = header.replace(f"'fortran_order': {not fortran}", f"'fortran_order': {fortran}")
    body = header.rstrip() + " "
    total = start + len(body) + 1
    body += " " * ((-total) % 64) + "\n"
    size = struct.pack("<I", len(body)) if size_len == 4 or len(body) > 65535 else struct.pack("<H", len(body))
    magic = npy[:6] + (bytes([2, 0]) if len(size) == 4 else npy[6:8])
    return magic + size + body.encode("latin1") + npy[start + hlen:]


def rebuild_zip(data: bytes, change: Callable[[str, bytes], Optional[bytes]], compression=zipfile.ZIP_STORED,
                extra: Optional[list] = None) -> bytes:
    """A zip with every member passed through ``change(name, bytes)`` (None drops it), plus ``extra`` members."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", compression) as dst:
        for info in src.infolist():
            new = change(info.filename, src.read(info))
            if new is not None:
                dst.writestr(info.filename, new)
        for name, member in extra or []:
            dst.writestr(name, member)
    return out.getvalue()


def _npz_container(draw, data: bytes) -> tuple[bytes, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
    member = draw(st.sampled_from(names))
    how = draw(st.sampled_from(["shape", "shape", "descr", "fortran", "duplicate member", "bytes"]))
    if how == "shape":
        shape = draw(st.sampled_from(NPY_SHAPES))
        return rebuild_zip(data, lambda n, b: rewrite_npy_header(b, shape=shape) if n == member else b), \
            f"{member} header shape {shape}"
    if how == "descr":
        descr = draw(st.sampled_from(NPY_DESCRS))
        return rebuild_zip(data, lambda n, b: rewrite_npy_header(b, descr=descr) if n == member else b), \
            f"{member} header descr {descr}"
    if how == "fortran":
        return rebuild_zip(data, lambda n, b: rewrite_npy_header(b, fortran=True) if n == member else b), \
            f"{member} header fortran_order True"
    if how == "duplicate member":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            copy_of = z.read(draw(st.sampled_from(names)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name, which is the point
            return rebuild_zip(data, lambda n, b: b, extra=[(member, copy_of)]), f"{member} twice in the zip"
    return draw(st.sampled_from(BYTE_OPS))(draw, data, data)


@st.composite
def npz_cases(draw, seeds) -> Case:
    arrays, labels = _mutated_arrays(draw, seeds)
    compressed = draw(st.booleans())
    data = npz_bytes(arrays, compressed)
    if compressed:
        labels.append("compressed")
    if draw(st.integers(0, 2)) == 0 and arrays:
        data, text = _npz_container(draw, data)
        labels.append(text)
    return Case("dataset", "dataset.npz", data, "npz " + "; ".join(labels))


# .h5 -----------------------------------------------------------------------------------------------------

def _h5_write(f, name: str, a: np.ndarray, **kw) -> None:
    import h5py

    if a.dtype == object or a.dtype.kind == "U":
        a = np.array([str(v) for v in a.ravel()], dtype=object).reshape(a.shape)
        f.create_dataset(name, data=a, dtype=h5py.string_dtype(), **kw)
        return
    if a.dtype.kind == "M":
        a = a.view(np.int64)
    f.create_dataset(name, data=a, **(kw if a.ndim else {}))


def h5_bytes(arrays: dict, structure: Optional[str] = None, *, gzip: bool = False) -> bytes:
    """An .h5 file (in memory) holding ``arrays`` under the h5 layout's names, with one structural trick."""
    import h5py

    buf = io.BytesIO()
    tiny = str(FIXTURES / "dataset_tiny.h5")
    with h5py.File(buf, "w") as f:
        for key, a in arrays.items():
            if structure and key == "train_x":
                continue
            kw = {"compression": "gzip", "shuffle": True, "chunks": True} if gzip and a.size else {}
            _h5_write(f, H5_NAMES.get(key, key), a, **kw)
        if structure:
            _h5_structure(f, structure, arrays.get("train_x", np.ones((30, 6))), tiny)
    return buf.getvalue()


H5_STRUCTURES = ["external storage", "external storage (missing file)", "external link", "dangling external link",
                 "soft-link loop", "soft link to a group", "virtual dataset", "declared 2**40 rows",
                 "group instead of dataset", "gzip 300 MB of ones", "scalar", "attributes only"]


def _h5_structure(f, how: str, x: np.ndarray, tiny: str) -> None:
    import h5py

    if how.startswith("external storage"):
        raw = "/nonexistent/fuzz.raw" if "missing" in how else str(FIXTURES / "dataset_bars.npz")
        f.create_dataset("X_train", shape=(4, 6), dtype="<f8", external=[(raw, 0, 4 * 6 * 8)])
    elif how == "external link":
        f["X_train"] = h5py.ExternalLink(tiny, "/X_train")
    elif how == "dangling external link":
        f["X_train"] = h5py.ExternalLink("missing-fuzz.h5", "/X_train")
    elif how == "soft-link loop":
        f["X_train"] = h5py.SoftLink("/loop")
        f["loop"] = h5py.SoftLink("/X_train")
    elif how == "soft link to a group":
        f.create_group("g")
        f["X_train"] = h5py.SoftLink("/g")
    elif how == "virtual dataset":
        layout = h5py.VirtualLayout(shape=(12, 5), dtype="<f8")
        layout[:] = h5py.VirtualSource(tiny, "X_train", shape=(12, 5))
        f.create_virtual_dataset("X_train", layout)
    elif how == "declared 2**40 rows":
        f.create_dataset("X_train", shape=(2**40, x.shape[-1] if x.ndim else 1), dtype="<f8", chunks=(64, 1))
    elif how == "group instead of dataset":
        f.create_group("X_train")
    elif how == "gzip 300 MB of ones":
        rows = 300 * 1024**2 // 784
        d = f.create_dataset("X_train", shape=(rows, 784), dtype="u1", chunks=(4096, 784), compression="gzip",
                             fillvalue=1)
        d.attrs["note"] = "every chunk is the fill value"
    elif how == "scalar":
        f.create_dataset("X_train", data=1.0)
    else:
        f.create_dataset("X_train", shape=None, dtype="<f8")


@st.composite
def h5_cases(draw, seeds) -> Case:
    arrays, labels = _mutated_arrays(draw, seeds)
    structure = draw(st.sampled_from([None, None] + H5_STRUCTURES))
    gzip = draw(st.booleans())
    try:
        data = h5_bytes(arrays, structure, gzip=gzip)
    except (TypeError, ValueError) as exc:  # h5py cannot store that mutation: store the untouched seed instead
        labels.append(f"(not storable: {type(exc).__name__})")
        data = h5_bytes({k: np.array(v) for k, v in seeds[labels[0]].items()}, structure, gzip=gzip)
    labels += [structure] if structure else []
    labels += ["gzip"] if gzip else []
    if draw(st.integers(0, 2)) == 0:
        data, text = draw(st.sampled_from(BYTE_OPS))(draw, data, data)
        labels.append(text)
    return Case("dataset", "dataset.h5", data, "h5 " + "; ".join(labels))


# .csv ----------------------------------------------------------------------------------------------------

CSV_CELLS = ["nan", "NaN", "inf", "-inf", "1e999", "-1", "-0", "1_000", "0x1f", "\uff11\uff12", "  7  ", "",
             "\x00", "1e-400", "9" * 400, "2.5", "1e9", "-1e300", '"', '"a,b"', "\u00e9", '"line\nbreak"',
             "\x1b[2J", "\u202e1"]
CSV_LABELS = ["-1", "2.5", "1e9", "1e300", "nan", "4294967296", "9007199254740993", "1e18"]


def _csv_cell(draw, lines: list[str]) -> str:
    row = draw(st.sampled_from(sorted({0, 1, len(lines) // 2, len(lines) - 1})))
    cells = lines[row].split(",")
    col = draw(st.sampled_from(sorted({0, len(cells) // 2, len(cells) - 1})))
    value = draw(st.sampled_from(CSV_CELLS + CSV_LABELS if col == len(cells) - 1 else CSV_CELLS))
    cells[col] = value
    lines[row] = ",".join(cells)
    return f"line {row + 1} column {col + 1} = {value[:20]!r}"


def _csv_header(draw, lines: list[str]) -> str:
    width = len(lines[0].split(","))
    how = draw(st.sampled_from(["duplicated", "empty", "escapes", "200,000-character name", "one name more"]))
    names = {"duplicated": ["x"] * width, "empty": [""] * width, "escapes": ['"\x1b[31m\t\\"'] * width,
             "200,000-character name": ["h" * 200_000] + ["y"] * (width - 1),
             "one name more": [f"c{i}" for i in range(width + 1)]}[how]
    lines.insert(0, ",".join(names))
    return f"header {how}"


def _csv_huge_line(draw, lines: list[str]) -> str:
    how = draw(st.sampled_from(["100,000 columns", "2,000,000-character field", "unclosed quote",
                                "1,000,000 commas"]))
    line = {"100,000 columns": ",".join(["1"] * 100_000), "2,000,000-character field": "1" * 2_000_000,
            "unclosed quote": '"' + "1," * 1000, "1,000,000 commas": "," * 1_000_000}[how]
    lines.insert(draw(st.integers(0, len(lines))), line)
    return f"a line of {how}"


def _csv_structure(draw, lines: list[str]) -> str:
    how = draw(st.sampled_from(["line deleted", "rows x1000", "blank lines", "semicolons", "tabs",
                                "one class only", "no data rows"]))
    if how == "line deleted":
        del lines[draw(st.integers(0, len(lines) - 1))]
    elif how == "rows x1000":
        lines[1:] = lines[1:2] * 1000 + lines[1:]
    elif how == "blank lines":
        lines[:] = [x for line in lines for x in (line, "", " , ")]
    elif how in ("semicolons", "tabs"):
        lines[:] = [line.replace(",", ";" if how == "semicolons" else "\t") for line in lines]
    elif how == "one class only":
        lines[:] = [line.rsplit(",", 1)[0] + ",0" for line in lines]
    else:
        lines[:] = lines[:1]
    return how


CSV_OPS = [_csv_cell, _csv_cell, _csv_header, _csv_huge_line, _csv_structure]


@st.composite
def csv_cases(draw, seeds: dict[str, str]) -> Case:
    name = draw(st.sampled_from(sorted(seeds)))
    lines = seeds[name].splitlines()
    labels = [name]
    for _ in range(draw(st.integers(1, 2))):
        op = draw(st.sampled_from(CSV_OPS))
        try:
            labels.append(op(draw, lines) if lines else "no line left to mutate")
        except (IndexError, ValueError) as exc:
            labels.append(f"({op.__name__} skipped: {type(exc).__name__})")
    ending = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    data = (ending.join(lines) + ending).encode("utf-8", "surrogatepass")
    if ending != "\n":
        labels.append(f"line ends {ending!r}")
    if draw(st.integers(0, 3)) == 0:
        data, text = draw(st.sampled_from(BYTE_OPS + [_byte_text]))(draw, data, data)
        labels.append(text)
    return Case("dataset", "dataset.csv", data, "csv " + "; ".join(labels))


def csv_seed_texts() -> dict[str, str]:
    return Seeds({"spectra": (FIXTURES / "dataset_spectra.csv").read_text(),
                  "mini": csv_text(_mini_arrays(60, 20)), "base-no-header": csv_text(_base_arrays(), header=False)})


# ---------------------------------------------------------------------------------------------------------
# Hand-made cases, each with the outcome it must have
# ---------------------------------------------------------------------------------------------------------

BOMB_FIXTURE = FUZZ_FIXTURES / "bomb_4gb.npz"
BOMB_ROWS, BOMB_COLS = 5_000_000, 800  # 4 GB of uint8 zeros; bzip2 squeezes them into about 3 kB


def make_bomb_fixture(path: Path = BOMB_FIXTURE) -> Path:
    """Write the zip bomb fixture: a valid small .npz whose train_x member is 4 GB of zeros, bzip2-compressed
    (about 30 s of CPU, once; the file is a few kB and is kept in tests/data/fuzz)."""
    from numpy.lib import format as npy_format

    path.parent.mkdir(parents=True, exist_ok=True)
    small = _base_arrays()
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                               "shape": (BOMB_ROWS, BOMB_COLS)})
    zeros = bytes(1 << 24)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2, allowZip64=True) as z:
        with z.open("train_x.npy", "w", force_zip64=True) as fh:
            fh.write(header.getvalue())
            left = BOMB_ROWS * BOMB_COLS
            while left:
                fh.write(zeros[:min(left, len(zeros))])
                left -= min(left, len(zeros))
        for key in ("train_y", "test_x", "test_y"):
            buf = io.BytesIO()
            np.save(buf, small[key])
            z.writestr(f"{key}.npy", buf.getvalue())
    return path


def _npz_with(member: str, **header) -> bytes:
    data = npz_bytes(_base_arrays())
    return rebuild_zip(data, lambda n, b: rewrite_npy_header(b, **header) if n == member else b)


def crafted_dataset_cases() -> list[Case]:
    """Dataset files that must be refused (expect='refused') or merely survived (expect=None)."""
    base = _base_arrays()
    cases = [
        Case("dataset", "bomb.npz", BOMB_FIXTURE.read_bytes() if BOMB_FIXTURE.exists() else b"",
             "npz zip bomb: train_x is 4 GB of bzip2-compressed zeros in a 3 kB file", "refused"),
        Case("dataset", "shape.npz", _npz_with("train_x.npy", shape="(1099511627776, 6)"),
             "npz whose train_x .npy header declares 2**40 rows", "refused"),
        Case("dataset", "negative.npz", _npz_with("train_x.npy", shape="(-1, 6)"),
             "npz whose train_x .npy header declares -1 rows", "refused"),
        Case("dataset", "object.npz", npz_bytes(dict(base, class_names=np.array(["a", "b", "c"], dtype=object))),
             "npz with class_names as a pickled object array", "refused"),
        Case("dataset", "longnames.npz", npz_bytes(dict(base, class_names=np.array(["n" * 100_000] * 3))),
             "npz with three 100,000-character class names", "refused"),
        Case("dataset", "hugeline.csv", b"a,b,label\n" + b"1" * 2_000_000 + b",1,0\n",
             "csv with a 2,000,000-character field", "refused"),
        Case("dataset", "nul.csv", b"a,b,label\n1,\x002,0\n", "csv with a NUL byte", "refused"),
    ]
    for how in H5_STRUCTURES[:8]:
        cases.append(Case("dataset", "trick.h5", h5_bytes(base, how), f"h5 whose X_train is: {how}", "refused"))
    cases.append(Case("dataset", "gzip.h5", h5_bytes(base, "gzip 300 MB of ones"),
                      "h5 whose X_train is 300 MB of gzip-compressed ones (a legal size, 3 MB on disk)"))
    cases.append(Case("dataset", "big.h5", big_valid_h5(64 * 1024**2 // 784),
                      "h5 of 85,600 x 784 uint8 ones with matching labels (64 MB, 0.33 GB once loaded: legal)",
                      "accepted"))
    cases.append(Case("dataset", "big300.h5", big_valid_h5(),
                      "h5 of 400,000 x 784 uint8 ones (300 MB, 1.5 GB once loaded: over the default max_array_bytes)",
                      "refused"))
    return cases


def big_valid_h5(rows: int = 300 * 1024**2 // 784) -> bytes:
    """A valid dataset of a legal size that is small on disk: X_train is all fill value (ones, no chunk written),
    the labels count 0, 1, 2 over and over (gzip)."""
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_dataset("X_train", shape=(rows, 784), dtype="u1", chunks=(4096, 784), compression="gzip",
                         fillvalue=1)
        f.create_dataset("Y_train", data=np.arange(rows, dtype=np.int64) % 3, chunks=True, compression="gzip")
        f.create_dataset("X_test", data=np.ones((30, 784), dtype=np.uint8))
        f.create_dataset("Y_test", data=np.arange(30) % 3)
    return buf.getvalue()


def crafted_topology_cases(seeds: dict[str, bytes]) -> list[Case]:
    """Topology files that must be refused (the lone surrogate may be accepted if it can be written back)."""
    doc = json.loads(seeds["v3-rf-perceptron"])
    out = []
    for label, path, value in [("nesting 100,000 deep in metrics", ("metrics",), NASTY_VALUES[-5]),
                               ("a 5,001-digit n_inputs", ("n_inputs",), NASTY_VALUES[-2]),
                               ("n_inputs = 2**40", ("n_inputs",), 2**40),
                               ("n_classes = 1e999", ("n_classes",), NASTY_VALUES[-4]),
                               ("NaN in the read-out gain", ("readout", "gain"), float("nan")),
                               ("a lone surrogate in class_names", ("class_names", 0), "\ud800"),
                               ("format_version 4", ("format_version",), 4)]:
        d = copy.deepcopy(doc)
        _parent(d, path)[path[-1]] = value
        out.append(Case("topology", "crafted.json", dumps_with_raw(d).encode(), f"v3-rf-perceptron: {label}",
                        None if "surrogate" in label else "refused"))
    sparse = json.loads(seeds["v3-sparse-network"])
    sparse["layer_sizes"] = [784, 10**6, 10]
    out.append(Case("topology", "crafted.json", dumps_with_raw(sparse).encode(),
                    "v3-sparse-network: a hidden layer of 10**6 units", "refused"))
    return out


# ---------------------------------------------------------------------------------------------------------
# Generating and running a campaign
# ---------------------------------------------------------------------------------------------------------

def for_each_case(strategy, n: int, seed_value: int, fn: Callable[[Case], None]) -> int:
    """Call ``fn`` on up to ``n`` distinct cases drawn by Hypothesis from ``strategy`` (the same ones for the
    same seed), one at a time, so that no more than one mutated file is held in memory. Hypothesis often draws
    the same file twice; repeats are skipped (at most 3n draws are made). Returns the number of cases run."""
    seen: set[bytes] = set()

    class Enough(Exception):
        """Raised once ``n`` cases have run, to stop Hypothesis drawing more."""

    @seed(seed_value)
    @settings(max_examples=3 * n, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def each(case: Case) -> None:
        if len(seen) >= n:
            raise Enough
        key = hashlib.sha1(case.data).digest()
        if key in seen:
            return
        seen.add(key)
        fn(case)

    try:
        each()
    except Enough:
        pass
    return len(seen)


def generate(strategy, n: int, seed_value: int = 0) -> list[Case]:
    """The ``n`` cases of :func:`for_each_case` as a list (small runs only: every file is kept in memory)."""
    cases: list[Case] = []
    for_each_case(strategy, n, seed_value, cases.append)
    return cases[:n]


def reader_of(case: Case) -> str:
    return "topology" if case.kind == "topology" else Path(case.name).suffix.lstrip(".")


@dataclass
class Record:
    case: Case
    result: dict
    problems: list[str]
    path: str = ""


class Runner:
    """Runs cases one by one in the fork server, keeps a light record of each (the file's bytes dropped) and
    copies failing files to ``keep`` with a .txt description."""

    def __init__(self, server: ForkServer, folder: Path, *, keep: Optional[Path] = None,
                 progress: Optional[Callable[[int, Record], None]] = None) -> None:
        self.server, self.folder, self.keep, self.progress = server, folder, keep, progress
        self.records: list[Record] = []
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, case: Case) -> Record:
        i = len(self.records)
        path = Case(case.kind, f"c{i:05d}-{case.name}", case.data, build=case.build).write(self.folder)
        result = self.server.run(case.kind, path)
        light = Case(case.kind, case.name, b"", case.label, case.expect)
        rec = Record(light, result, problems(result, str(path), expect=case.expect), str(path))
        if rec.problems and self.keep is not None:
            save_failure(rec, self.keep)
        path.unlink(missing_ok=True)
        self.records.append(rec)
        if self.progress:
            self.progress(i, rec)
        return rec


def run_cases(server: ForkServer, cases: list[Case], folder: Path, *, keep: Optional[Path] = None,
              progress: Optional[Callable[[int, Record], None]] = None) -> list[Record]:
    """Run every case in the fork server (see :class:`Runner`); returns the records."""
    runner = Runner(server, folder, keep=keep, progress=progress)
    for case in cases:
        runner(case)
    return runner.records


def category(rec: Record) -> str:
    first = rec.problems[0]
    return first.split(":")[0].split(",")[0]


def save_failure(rec: Record, keep: Path) -> Path:
    folder = keep / reader_of(rec.case)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(list(folder.glob("*.txt")))
    target = folder / f"{n:04d}{Path(rec.case.name).suffix}"
    shutil.copyfile(rec.path, target)
    res = {k: v for k, v in rec.result.items() if k != "traceback"}
    target.with_suffix(".txt").write_text(
        f"{rec.case.label}\nproblems: {'; '.join(rec.problems)}\nresult: {json.dumps(res)}\n\n"
        f"{rec.result.get('traceback', '')}", encoding="utf-8", errors="backslashreplace")
    return target


def summary(records: list[Record], first: int = 3) -> tuple[str, dict]:
    """A printable report of a campaign and the same figures as a dict."""
    counts: dict[str, dict[str, int]] = {}
    for rec in records:
        per = counts.setdefault(reader_of(rec.case), {})
        per[rec.result["outcome"]] = per.get(rec.result["outcome"], 0) + 1
    worst = max(records, key=lambda r: r.result.get("rss_above_kb", 0), default=None)
    refused = [r for r in records if r.result["outcome"] == "refused"]
    slow_refusal = max(refused, key=lambda r: r.result["cpu_s"], default=None)
    slowest = max(records, key=lambda r: r.result.get("cpu_s", 0), default=None)
    failing: dict[str, list[Record]] = {}
    for rec in records:
        if rec.problems:
            failing.setdefault(f"{reader_of(rec.case)} / {category(rec)}", []).append(rec)
    lines = [f"{len(records)} cases; {sum(1 for r in records if r.problems)} failing"]
    for reader, per in sorted(counts.items()):
        lines.append(f"  {reader:9s} " + ", ".join(f"{k} {v}" for k, v in sorted(per.items())))
    if worst:
        lines.append(f"worst RSS growth of a case: {worst.result['rss_above_kb'] / 1024:.0f} MB "
                     f"({worst.result['outcome']}: {worst.case.label[:150]})")
    if slow_refusal:
        lines.append(f"slowest refusal: {slow_refusal.result['cpu_s']:.2f} s CPU, "
                     f"{slow_refusal.result['elapsed_s']:.2f} s wall ({slow_refusal.case.label[:150]})")
    if slowest:
        lines.append(f"slowest case: {slowest.result['cpu_s']:.2f} s CPU ({slowest.result['outcome']}: "
                     f"{slowest.case.label[:150]})")
    for cat, recs in sorted(failing.items()):
        lines.append(f"FAIL {cat}: {len(recs)} case(s)")
        for rec in recs[:first]:
            lines.append(f"    {rec.case.label[:160]}  ->  {'; '.join(rec.problems)[:240]}")
    figures = {"counts": counts, "failing": {k: len(v) for k, v in failing.items()},
               "worst_rss_above_mb": worst.result["rss_above_kb"] / 1024 if worst else 0,
               "slowest_refusal_cpu_s": slow_refusal.result["cpu_s"] if slow_refusal else 0,
               "slowest_cpu_s": slowest.result["cpu_s"] if slowest else 0}
    return "\n".join(lines), figures


def run_campaign(runner: Runner, seed_dir: Path, n_topologies: int, n_datasets: int, seed_value: int = 0,
                 crafted: bool = True) -> list[Record]:
    """The crafted cases, then ``n_topologies`` mutated topology files and ``n_datasets`` mutated datasets."""
    topo_seeds = topology_seed_texts(seed_dir)
    if crafted:
        for case in crafted_topology_cases(topo_seeds) + crafted_dataset_cases():
            runner(case)
    for_each_case(topology_cases(topo_seeds), n_topologies, seed_value, runner)
    for strategy, n in zip(dataset_strategies(), split_evenly(n_datasets, 3)):
        for_each_case(strategy, n, seed_value, runner)
    return runner.records


def split_evenly(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def dataset_strategies() -> list:
    """One strategy per dataset format: .npz, .h5, .csv."""
    arrays = dataset_seed_arrays()
    return [npz_cases(arrays), h5_cases(arrays), csv_cases(csv_seed_texts())]


def _progress_printer(total: int):
    t0 = time.monotonic()

    def show(i: int, rec: Record) -> None:
        if rec.problems:
            print(f"  [{i + 1}/{total}] FAIL {rec.case.label[:120]} -> {'; '.join(rec.problems)[:200]}",
                  file=sys.stderr, flush=True)
        elif (i + 1) % 50 == 0 or i + 1 == total:
            print(f"  [{i + 1}/{total}] {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    return show


def _replay(server: ForkServer, folder: Path) -> list[Record]:
    kinds = {".json": "topology", ".npz": "dataset", ".csv": "dataset", ".h5": "dataset"}
    records = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in kinds):
        txt = path.with_suffix(".txt")
        label = txt.read_text(errors="replace").splitlines()[0] if txt.exists() else path.name
        case = Case(kinds[path.suffix], path.name, label=f"{path}: {label}")
        result = server.run(case.kind, path)
        records.append(Record(case, result, problems(result, str(path)), str(path)))
    return records


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return _serve()
    p = argparse.ArgumentParser(prog="python tests/fuzzing.py", description="Fuzz every file reader.")
    p.add_argument("--topologies", type=int, default=1000, help="mutated topology files (default 1000)")
    p.add_argument("--datasets", type=int, default=300, help="mutated dataset files (default 300)")
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    p.add_argument("--out", type=Path, default=REPO / "results" / "fuzz", help="where failures and seeds go")
    p.add_argument("--replay", type=Path, help="run the saved files under this folder again and stop")
    p.add_argument("--make-bomb-fixture", action="store_true", help=f"(re)write {BOMB_FIXTURE.name} and stop")
    args = p.parse_args(argv)
    if args.make_bomb_fixture:
        print(make_bomb_fixture())
        return 0
    with ForkServer() as server, tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        if args.replay:
            records = _replay(server, args.replay)
        else:
            seeds = args.out / "seeds"
            if not any(seeds.glob("*.json")):
                print(f"training the seed exports into {seeds} ...", file=sys.stderr, flush=True)
                server.make_seeds(seeds)
            failures = args.out / "failures"
            shutil.rmtree(failures, ignore_errors=True)
            crafted = len(crafted_topology_cases(topology_seed_texts(seeds))) + len(crafted_dataset_cases())
            total = args.topologies + args.datasets + crafted
            print(f"{crafted} hand-made cases, {args.topologies} mutated topology files and {args.datasets} mutated "
                  f"datasets; failures go to {failures}", file=sys.stderr, flush=True)
            runner = Runner(server, Path(tmp), keep=failures, progress=_progress_printer(total))
            records = run_campaign(runner, seeds, args.topologies, args.datasets, args.seed)
        text, figures = summary(records)
        print(f"server baseline RSS: {server.baseline_kb / 1024:.0f} MB")
        print(text)
        if not args.replay:
            (args.out / "summary.json").write_text(json.dumps(figures, indent=1) + "\n")
            with open(args.out / "records.jsonl", "w", encoding="utf-8") as fh:
                for rec in records:
                    row = {k: v for k, v in rec.result.items() if k != "traceback"}
                    fh.write(json.dumps({"label": rec.case.label[:300], "problems": rec.problems, **row}) + "\n")
    return 1 if any(r.problems for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
