"""The wheel works on its own: it carries the embedded datasets, and an installed copy trains from any folder.

Offline, in about 10 s: the project's sources are copied to a temporary folder (so that the build writes no
build/ or egg-info into the working tree, and no stale build/lib file from an earlier build can slip into the
wheel) and built with ``pip wheel --no-deps --no-build-isolation --no-index``, exactly what ``pip wheel .``
does in a clean checkout. The wheel is installed with ``pip --python`` into a fresh venv made without pip.
Only then, so that pip never sees the project's own editable install, a ``.pth`` file gives that venv the
project venv's site-packages for torch and numpy. A ``.pth`` line only appends a folder to sys.path; the
``.pth`` files inside that folder, among them the editable install's ``__editable__*.pth`` finder hook, are
not run. The test checks that ``engine`` really comes from the new venv.
"""
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_ROOTS = ("engine", "rfexplorer")
TOP_FILES = ("pyproject.toml", "README.md", "setup.cfg", "setup.py", "MANIFEST.in", "LICENSE", "LICENSE.txt")
EMBEDDED = ("mnist-mini.npz", "drones.npz", "README.md", "LICENSE-drones-CC-BY-4.0.txt", "__init__.py")


def _run(cmd, cwd, env=None, timeout=300):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in (*PACKAGE_ROOTS, "resources"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in TOP_FILES:
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation", "--no-index", "-w",
          dist, "-q"], cwd=tmp)
    (whl,) = dist.glob("rfexplorer-*.whl")
    return whl


def test_wheel_carries_every_package_and_the_embedded_datasets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in EMBEDDED:
        assert f"engine/_resources/{f}" in names, f"{f} is not in the wheel"
    assert "rfexplorer/resources/rfexplorer.png" in names
    assert not any(n.startswith(("resources/", "tests/")) for n in names), "only the two packages are installed"
    # pyproject.toml lists the packages by hand: every module of the source tree must be in the wheel.
    modules = {p.relative_to(ROOT).as_posix() for r in PACKAGE_ROOTS for p in (ROOT / r).rglob("*.py")
               if "__pycache__" not in p.parts}
    missing = sorted(modules - names)
    assert not missing, f"add their packages to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_installed_wheel_finds_its_datasets_and_trains_outside_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
         cwd=tmp_path)
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                        cwd=tmp_path).strip())
    outer = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()}
    (purelib / "_rfexplorer_test_outer.pth").write_text("".join(f"{p}\n" for p in sorted(outer)
                                                                if Path(p).is_dir()))
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", XDG_DATA_HOME=str(tmp_path / "xdg"), RFEXPLORER_DATA=str(tmp_path / "none"))

    probe = ("import json, sys; sys.modules['h5py'] = None\n"  # the embedded sets must not need h5py
             "import engine, engine.data as d\n"
             "ds = d.load_dataset('drones')\n"
             "print(json.dumps({'engine': engine.__file__, 'data': str(d.embedded_data_dir()),\n"
             "                  'available': d.available_datasets(), 'drones': [ds.n_inputs, ds.n_classes],\n"
             "                  'mini': d.load_dataset('mnist-mini').n_inputs}))")
    found = json.loads(_run([python, "-c", probe], cwd=work, env=env).strip().splitlines()[-1])
    assert Path(found["engine"]).is_relative_to(venv), f"engine was imported from {found['engine']}, not the wheel"
    assert Path(found["data"]) == Path(found["engine"]).parent / "_resources"
    assert found["available"] == ["mnist-mini", "drones"]
    assert found["drones"] == [256, 10] and found["mini"] == 784

    for extra in ([], ["--dataset", "drones"]):
        out = _run([venv / "bin" / "rfexplorer-cli", "train", "--epochs", "1", "--json", *extra], cwd=work, env=env)
        result = json.loads(out.strip().splitlines()[-1])
        acc = result["test_accuracy"]
        assert isinstance(acc, float) and 0.0 < acc <= 1.0, result
    assert not any(work.iterdir()), "training wrote nothing into the working folder"
