"""``rfexplorer-cli doctor``: what this machine has for the engine, as a checklist.

Each check is a :class:`Check` record (name, ok, required, detail). A missing required item (Python too old,
no torch, no loadable dataset) makes :func:`exit_status` non-zero; optional ones (GPU, Ray, h5py) are
informational. Qt-free: the app adds its own checks (``rfexplorer.platform_check.qt_checks``) for
``rfexplorer --check``.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import asdict, dataclass
from typing import Iterable, Optional

MIN_PYTHON = (3, 10)


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    name: str
    ok: bool
    required: bool  #: False: informational; a failure does not change the exit status
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def _python() -> Check:
    ok = sys.version_info[:2] >= MIN_PYTHON
    need = ".".join(map(str, MIN_PYTHON))
    return Check(
        "Python",
        ok,
        True,
        f"{platform.python_version()} ({sys.executable})"
        + ("" if ok else f"; rfexplorer needs Python {need} or newer"),
    )


def _torch() -> list[Check]:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install raises more than ImportError
        return [Check("torch", False, True, f"cannot be imported ({exc}); pip install torch")]
    from engine.io.results import software_versions

    versions = software_versions()
    return [
        Check("torch", True, True, f"{torch.__version__}, {torch.get_num_threads()} threads"),
        Check("ATen CPU capability", True, False, versions["aten_cpu_capability"]),
        Check("BLAS", True, False, versions["blas"]),
    ]


def _gpu() -> Check:
    try:
        import torch

        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            return Check("GPU", True, False, "CUDA: " + ", ".join(names))
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return Check("GPU", True, False, "Apple MPS")
    except Exception as exc:  # noqa: BLE001 - informational only
        return Check("GPU", False, False, f"could not be queried ({exc})")
    return Check("GPU", False, False, "none (not needed: the engine trains on the CPU)")


def _datasets(data_dir: Optional[str]) -> Check:
    try:
        from engine.data import available_datasets, resolve_data_root

        root = resolve_data_root(data_dir)
        names = available_datasets(data_dir)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return Check("Datasets", False, True, f"cannot be listed ({exc})")
    where = f"data folder {root}" + ("" if root.is_dir() else " (does not exist)")
    if not names:
        return Check("Datasets", False, True, f"none loadable; {where}")
    return Check("Datasets", True, True, f"{', '.join(names)}; {where}")


def _optional_module(name: str, label: str, hint: str) -> Check:
    try:
        module = __import__(name)
    except Exception:  # noqa: BLE001 - optional: any failure means "not usable"
        return Check(label, False, False, f"not installed (optional: {hint})")
    return Check(label, True, False, str(getattr(module, "__version__", "installed")))


def run_checks(data_dir: Optional[str] = None) -> list[Check]:
    """The engine's checklist: Python, torch (ATen CPU capability, BLAS), GPU, datasets, Ray, h5py."""
    return [
        _python(),
        *_torch(),
        _gpu(),
        _datasets(data_dir),
        _optional_module("ray", "Ray", "sweeps on a cluster, pip install 'rfexplorer[cluster]'"),
        _optional_module("h5py", "h5py", "reading .h5 dataset files, pip install 'rfexplorer[h5]'"),
    ]


def format_checklist(checks: Iterable[Check]) -> str:
    """One line per check: ``[ ok ]``, ``[FAIL]`` (required, missing) or ``[ -- ]`` (optional, missing)."""
    checks = list(checks)
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for c in checks:
        mark = "[ ok ]" if c.ok else ("[FAIL]" if c.required else "[ -- ]")
        lines.append(f"{mark} {c.name:<{width}}  {c.detail}")
    return "\n".join(lines)


def exit_status(checks: Iterable[Check]) -> int:
    """1 when a required check failed, else 0."""
    return 1 if any(c.required and not c.ok for c in checks) else 0
