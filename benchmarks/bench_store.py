"""The run store's speed (engine.io.store): writes --runs synthetic records into a temporary SQLite store, then
times listing every run, a two-clause settings filter (``--where model=rf-input --where device.tuning_bits=8``)
through the API and through ``rfexplorer-cli runs list``, and counting. Exits non-zero if any of them takes longer
than --target-s (default 1 s, the issue's target at 10,000 runs).

    python benchmarks/bench_store.py                       # what `make bench` runs
    python benchmarks/bench_store.py --runs 1000 --json /tmp/bench_store.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from engine.cli import main as cli_main
from engine.config.run_config import RunConfig
from engine.io.results import ResultRow
from engine.io.store import open_store

MODELS = ("rf", "rf-input", "rf-frozen", "dense", "rigl", "prune")
WHERE = {"model": "rf-input", "device.tuning_bits": "8"}


def synthetic_rows(n: int, seed: int = 0) -> list[ResultRow]:
    """``n`` result rows with varied models, K, seeds and device settings (a quarter at each tuning_bits)."""
    rng = random.Random(seed)
    base = RunConfig().resolved().to_dict()
    rows = []
    for i in range(n):
        config = copy.deepcopy(base)
        config.update(model=MODELS[i % len(MODELS)], resonators_per_chain=rng.choice((5, 10, 20, 50)), seed=i % 5)
        config["device"]["tuning_bits"] = (None, 4, 6, 8)[(i // len(MODELS)) % 4]
        config["device"]["alpha"] = round(rng.uniform(0.002, 0.01), 5)
        acc = rng.uniform(0.5, 0.95)
        rows.append(
            ResultRow(
                model=config["model"],
                dataset="mnist",
                resonators_per_chain=config["resonators_per_chain"],
                seed=config["seed"],
                test_accuracy=acc,
                train_seconds=rng.uniform(5, 50),
                config=config,
                history=[[e, 1.0 / e, acc - 0.05, acc] for e in range(1, 11)],
                versions={"rfexplorer": "bench"},
            )
        )
    return rows


def timed(fn, repeats: int = 3) -> tuple[float, object]:
    """The best of ``repeats`` wall times of ``fn()`` (s), and its last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def cli_list(url: str) -> int:
    argv = ["runs", "list", "--store", url, "--all", "--json"]
    for path, value in WHERE.items():
        argv += ["--where", f"{path}={value}"]
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
        status = cli_main(argv)
    if status != 0:
        raise SystemExit(f"runs list failed with status {status}")
    return json.loads(out.getvalue().splitlines()[-1])["total"]


def run(n: int, target: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        store = open_store(Path(folder) / "runs.sqlite")
        rows = synthetic_rows(n)
        start = time.perf_counter()
        for i in range(0, n, 500):
            store.record_many(rows[i : i + 500], source="sweep")
        write_s = time.perf_counter() - start
        expected = sum(1 for r in rows if r.config["model"] == "rf-input" and r.config["device"]["tuning_bits"] == 8)
        list_s, every = timed(lambda: store.list())
        filter_s, found = timed(lambda: store.list(WHERE))
        count_s, counted = timed(lambda: store.count(WHERE))
        cli_s, cli_total = timed(lambda: cli_list(store.url))
        store.close()
    assert len(every) == n and len(found) == counted == cli_total == expected, (len(found), counted, expected)
    return {
        "runs": n,
        "write_s": round(write_s, 3),
        "records_per_s": round(n / write_s),
        "list_all_s": round(list_s, 4),
        "filter_2_clauses_s": round(filter_s, 4),
        "count_2_clauses_s": round(count_s, 4),
        "cli_runs_list_2_clauses_s": round(cli_s, 4),
        "matches": expected,
        "target_s": target,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000, help="synthetic records to write (default 10000)")
    ap.add_argument("--target-s", type=float, default=1.0, help="the most a list or filter may take (s)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    figures = run(args.runs, args.target_s)
    for key, value in figures.items():
        print(f"{key:<28} {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    timed_keys = ("list_all_s", "filter_2_clauses_s", "count_2_clauses_s", "cli_runs_list_2_clauses_s")
    missed = [k for k in timed_keys if figures[k] > args.target_s]
    print("target met" if not missed else f"target missed: {', '.join(missed)} over {args.target_s} s")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
