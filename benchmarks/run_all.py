"""`make bench`: the engine speed and the app responsiveness benchmarks, each in its own process.

Writes results/bench/*.json and exits non-zero if a target is missed.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "results" / "bench"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    status = 0
    for script, extra in (("bench_engine.py", ["--threads", "1"]), ("bench_app.py", [])):
        name = script.removesuffix(".py")
        cmd = [sys.executable, str(HERE / script), *extra, "--json", str(OUT / f"{name}.json")]
        print(f"$ {' '.join(cmd[1:])}", flush=True)
        status |= subprocess.call(cmd, cwd=HERE.parent)
    print("all targets met" if status == 0 else "some targets missed (see above)")
    return status


if __name__ == "__main__":
    sys.exit(main())
