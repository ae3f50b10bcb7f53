"""``doctor``: a checklist of this machine (Python, torch, BLAS, GPU, datasets, Ray, h5py;
engine.experiments.doctor)."""

from __future__ import annotations

import json

from engine.experiments.doctor import exit_status, format_checklist, run_checks


def add_parser(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this machine: Python, torch, BLAS, GPU, datasets, Ray, h5py",
        description="A checklist on stdout; exit status 1 when something needed is missing.",
    )
    p.add_argument("--data-dir", default=None, metavar="DIR", help="where MNIST-family data is looked for")
    p.add_argument("--json", action="store_true", help="make the last line of stdout one JSON object")


def cmd_doctor(args) -> int:
    checks = run_checks(args.data_dir)
    print(format_checklist(checks), flush=True)
    if args.json:
        print(json.dumps({"checks": [c.to_dict() for c in checks]}), flush=True)
    return exit_status(checks)
