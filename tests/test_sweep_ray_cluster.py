"""A Ray sweep on a cluster: a head and two worker nodes on this machine (``ray.cluster_utils.Cluster``, every
node on 127.0.0.1 with one CPU, the head with none, so runs must spread), joined through the CLI with
``sweep --backend ray --address``. Runs spread over both workers and give the local backend's rows; a worker
node removed mid-sweep costs no row and duplicates none (its run is retried on the other node), or, with no
retries left, leaves a failed row that a resumed sweep runs again. Every server listens on 127.0.0.1 only and
no process outlives the cluster. Needs the 'cluster' extra (skipped without Ray)."""
from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from engine.config.run_config import RunConfig
from engine.core.files import json_safe
from engine.experiments.sweep.runner import ROWS_FILE, SweepSpec, finished_rows, markdown_table, read_rows_log, rows_csv_text, settings_key
from engine.experiments.sweep.ray_backend import NODE_FIELD, is_loopback, max_retries_setting

#: A tiny sweep: 3 RF runs (about a second each) and 3 dense ones, one epoch of mnist-mini.
SWEEP = ["--quick", "--models", "rf,dense", "--ks", "10", "--seeds", "0,1,2", "--epochs", "1", "--threads", "1",
         "--quiet"]
N_RUNS = 6
#: Row fields that say when, with which software and where a run ran, not what it computed.
NOT_COMPARED = ("train_seconds", "created", "versions", NODE_FIELD)
#: An environment variable every process of the test cluster inherits, to find them all afterwards.
MARK = "RFEXPLORER_RAY_CLUSTER_TEST"
NODE = {"node_ip_address": "127.0.0.1", "num_cpus": 1}


def _sweep(out: Path, *extra: str) -> int:
    from engine.cli import main

    return main(["sweep", *SWEEP, "--out", str(out), *extra])


def _rows(out: Path) -> list[dict]:
    rows, notes = read_rows_log(out / ROWS_FILE)
    assert not notes
    return rows


def _key(row: dict) -> str:
    return settings_key(RunConfig.from_dict(row["config"]))


def _computed(row: dict) -> str:
    return json.dumps(json_safe({k: v for k, v in row.items() if k not in NOT_COMPARED}), sort_keys=True)


def _assert_same_results(rows: list[dict], reference: list[dict]) -> None:
    ref = {_key(r): r for r in reference}
    assert sorted(_key(r) for r in rows) == sorted(ref)  # every run, each once
    for row in rows:
        assert _computed(row) == _computed(ref[_key(row)]), row["model"]


# --- processes and sockets of the cluster (Linux /proc) ------------------------------------------------------

def _marked_pids(mark: str) -> set[int]:
    """Processes (other than this one) whose environment carries the test cluster's mark."""
    needle = f"{MARK}={mark}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":  # a zombie is gone, only not yet reaped
                    found.add(int(entry.name))
        except OSError:  # exited meanwhile, or not ours to read
            continue
    return found


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").split("/")[-1]
    except OSError:
        return ""


def _listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket held by ``pids``."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            hex_ip, hex_port = local.split(":")
            raw = bytes.fromhex(hex_ip)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # host-order words
            out.add((str(ipaddress.ip_address(raw)), int(hex_port, 16)))
    return out


def _loopback_ip(text: str) -> bool:
    ip = ipaddress.ip_address(text)
    return (ip.ipv4_mapped or ip).is_loopback if ip.version == 6 else ip.is_loopback


@pytest.fixture(scope="module")
def cluster():
    """Head (no CPU) + two one-CPU worker nodes, all on 127.0.0.1; at the end, every process of it is gone."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    mark = uuid.uuid4().hex
    os.environ[MARK] = mark
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        c = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0, "include_dashboard": False})
    finally:
        del os.environ[MARK]  # only the nodes' processes carry it (the drivers below are this process)
    try:
        _ensure_two_workers(c, mark)
        yield c, mark
    finally:
        c.shutdown()
    deadline = time.monotonic() + 30
    while _marked_pids(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _marked_pids(mark), "processes of the test cluster outlived it"


def _ensure_two_workers(c, mark: str) -> None:
    os.environ[MARK] = mark
    try:
        while len(c.worker_nodes) < 2:
            c.add_node(**NODE)
        c.wait_for_nodes()
    finally:
        del os.environ[MARK]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The same sweep on the local backend, in this process (one torch thread, like each Ray task), one run at a
    time as Ray's tasks are (runs trained together round their products otherwise)."""
    import torch

    out = tmp_path_factory.mktemp("local")
    threads = torch.get_num_threads()
    try:
        assert _sweep(out, "--workers", "1", "--one-at-a-time") == 0
    finally:
        torch.set_num_threads(threads)
    rows = _rows(out)
    assert len(rows) == N_RUNS and all(r["error"] is None for r in rows)
    assert all(NODE_FIELD not in r for r in rows)
    return out, rows


def _at_first_row(rows_file: Path, action, state: dict, timeout: float = 120.0) -> None:
    """In a thread: as soon as ``rows_file`` holds a row, ``action(first_row)``; errors go to state['error']."""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows, _ = read_rows_log(rows_file)
            if rows:
                action(rows[0])
                return
            time.sleep(0.02)
        state["error"] = "no row came"
    except Exception as exc:  # reported by the test
        state["error"] = repr(exc)


def _run_with(action, out: Path, *args: str) -> tuple[int, dict]:
    state: dict = {}
    thread = threading.Thread(target=_at_first_row, args=(out / ROWS_FILE, lambda row: action(row, state), state),
                              daemon=True)
    thread.start()
    rc = _sweep(out, *args)
    thread.join(timeout=60)
    assert not thread.is_alive() and "error" not in state, state
    return rc, state


def _lose_the_other_node(c):
    """The action that removes the worker that did not deliver the first row: it is in the middle of a run. A
    first row with no node is a run that failed already (a loaded machine can lose a task): any worker goes."""
    def action(first: dict, state: dict) -> None:
        where = first[NODE_FIELD]["id"] if first[NODE_FIELD] else None
        victim = next(n for n in c.worker_nodes if n.node_id != where)
        state["lost"] = victim.node_id
        c.remove_node(victim)
    return action


def test_runs_spread_over_the_nodes_and_equal_the_local_backends(cluster, local_sweep, tmp_path):
    import ray

    c, mark = cluster
    _ensure_two_workers(c, mark)
    assert is_loopback(c.address)
    out = tmp_path / "ray"

    def look(first: dict, state: dict) -> None:  # while the sweep runs: who listens where
        pids = _marked_pids(mark)
        state["names"] = {_name(pid) for pid in pids}
        state["listening"] = _listening(pids | {os.getpid()})

    rc, state = _run_with(look, out, "--backend", "ray", "--address", c.address)
    assert rc == 0 and not ray.is_initialized()  # the sweep disconnected (the cluster runs on)
    # the mark reaches every kind of process of the cluster, the task workers included
    assert {"gcs_server", "raylet"} <= state["names"] and any(n.startswith("ray::") for n in state["names"])
    assert state["listening"] and all(_loopback_ip(a) for a, _ in state["listening"]), state["listening"]
    rows = _rows(out)
    workers = {n.node_id for n in c.worker_nodes}
    ran_on = {r[NODE_FIELD]["id"] for r in rows}
    assert len(ran_on) == 2 and ran_on <= workers
    assert {r[NODE_FIELD]["ip"] for r in rows} == {"127.0.0.1"}
    assert all(r[NODE_FIELD]["attempt"] == 0 for r in rows)
    local_out, local_rows = local_sweep
    _assert_same_results(rows, local_rows)
    # the tables do not say where runs ran: the same files as the local backend's
    assert (out / "sweep_table.md").read_text() == (local_out / "sweep_table.md").read_text()
    assert (out / "sweep.csv").read_text().splitlines()[0] == (local_out / "sweep.csv").read_text().splitlines()[0]
    # resuming ignores where runs ran: nothing runs again
    before = (out / ROWS_FILE).read_bytes()
    assert _sweep(out, "--backend", "ray", "--address", c.address) == 0
    assert (out / ROWS_FILE).read_bytes() == before


def _sweep_losing_a_node(c, mark, tmp_path: Path, was_lost, *args: str, attempts: int = 3):
    """Run the sweep and remove the other worker at the first row, until that worker was mid-run when it went
    (``was_lost(rows)``): on a loaded machine it may have just finished. Returns (rc, state, out, rows)."""
    for attempt in range(attempts):
        _ensure_two_workers(c, mark)
        out = tmp_path / f"ray{attempt}"
        rc, state = _run_with(_lose_the_other_node(c), out, "--backend", "ray", "--address", c.address, *args)
        rows = _rows(out)
        if rc != 0 or was_lost(rows):
            break
    return rc, state, out, rows


def test_a_lost_worker_node_costs_no_row_and_duplicates_none(cluster, local_sweep, tmp_path):
    c, mark = cluster
    rc, state, out, rows = _sweep_losing_a_node(
        c, mark, tmp_path, lambda rows: any(r[NODE_FIELD] and r[NODE_FIELD]["attempt"] for r in rows),
        "--max-retries", "2")
    assert rc == 0
    assert len(rows) == N_RUNS and all(r["error"] is None for r in rows)
    retried = [r for r in rows if r[NODE_FIELD]["attempt"]]
    assert retried, "no run was lost with the node"
    assert all(r[NODE_FIELD]["id"] != state["lost"] for r in retried)
    _assert_same_results(rows, local_sweep[1])  # a retried run computes the same row


def test_a_run_lost_with_no_retry_left_is_a_failed_row_that_resuming_runs_again(cluster, local_sweep, tmp_path):
    c, mark = cluster
    rc, state, out, rows = _sweep_losing_a_node(
        c, mark, tmp_path, lambda rows: any(r["error"] is not None for r in rows), "--max-retries", "0")
    assert rc == 0  # the sweep finished
    assert len({_key(r) for r in rows}) == len(rows) == N_RUNS
    failed = [r for r in rows if r["error"] is not None]
    assert failed, "no run was lost with the node"
    for row in failed:
        assert row["test_accuracy"] is None and row[NODE_FIELD] is None
        assert row["error"].startswith("the Ray task failed after 1 attempt(s): ")
    # resuming runs the failed runs only, on the node that is left
    assert _sweep(out, "--backend", "ray", "--address", c.address) == 0
    rows = _rows(out)
    assert len(rows) == N_RUNS + len(failed)
    done = finished_rows(SweepSpec(models=("rf", "dense"), ks=(10,), seeds=(0, 1, 2),
                                   base=RunConfig(dataset="mnist-mini", epochs=1)).jobs(784), rows,
                         _dataset())
    assert len(done) == N_RUNS
    _assert_same_results(list(done.values()), local_sweep[1])


def test_a_run_that_raises_in_its_task_is_a_failed_row(cluster):
    import ray

    from engine.experiments.sweep.ray_backend import run_ray

    c, _ = cluster
    dataset = _dataset()
    bad = RunConfig(dataset="mnist-mini", epochs=1, model="rf", resonators_per_chain=dataset.n_inputs + 1)
    rows: list = []
    spec = SweepSpec(models=("rf",), ks=(10,), seeds=(0,), base=RunConfig(dataset="mnist-mini", epochs=1))
    run_ray(spec, [bad], dataset, rows.append, address=c.address)
    assert not ray.is_initialized()
    assert len(rows) == 1 and rows[0]["test_accuracy"] is None and rows[0][NODE_FIELD] is None
    assert rows[0]["error"].startswith("the run raised ValueError: ")


def _dataset():
    from engine.data import load_dataset

    return load_dataset("mnist-mini")


# --- without a cluster ----------------------------------------------------------------------------------------

def test_resuming_and_the_tables_ignore_where_a_run_ran(local_sweep):
    out, rows = local_sweep
    placed = [{**r, NODE_FIELD: {"id": "ab" * 28, "ip": "127.0.0.1", "attempt": i % 2}} for i, r in enumerate(rows)]
    assert rows_csv_text(placed) == rows_csv_text(rows)
    assert markdown_table(placed) == markdown_table(rows)
    jobs = [RunConfig.from_dict(r["config"]) for r in rows]
    assert {settings_key(j) for j in jobs} == {_key(r) for r in placed}
    assert sorted(finished_rows(jobs, placed, _dataset())) == list(range(len(jobs)))


def test_addresses_on_this_machine_only_are_loopback():
    for address in ("127.0.0.1:6379", "localhost:6379", "[::1]:6379", "127.0.0.2"):
        assert is_loopback(address), address
    for address in ("10.1.2.3:6379", "head:6379", "ray://127.0.0.1:10001", "[2001:db8::1]:6379"):
        assert not is_loopback(address), address


def test_max_retries_is_checked(tmp_path, capsys):
    from engine.cli import main

    assert max_retries_setting(None) == 3 and max_retries_setting(0) == 0
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="max retries"):
            max_retries_setting(bad)
    assert main(["sweep", *SWEEP, "--out", str(tmp_path / "o"), "--max-retries", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--backend ray" in err[0]
    assert main(["sweep", *SWEEP, "--out", str(tmp_path / "o"), "--backend", "ray", "--max-retries", "-1"]) == 2
    assert not (tmp_path / "o").exists()
