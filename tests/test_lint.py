"""The tools that keep the code tidy pass: ruff (lint, and format on engine/) and mypy on engine/.

Their settings live in pyproject.toml ([tool.ruff], [tool.mypy]). Each tool runs from the environment that runs
the tests (the executables next to ``sys.executable``); a missing one skips its test with the reason.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(tool: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    exe = BIN / tool
    if not exe.exists():
        pytest.skip(f"{tool} is not installed next to {sys.executable} (pip install -e '.[dev]')")
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_check_passes():
    result = _run("ruff", "check", "--no-cache", "engine", "rfexplorer")
    assert result.returncode == 0, result.stdout + result.stderr


def test_engine_is_ruff_formatted():
    result = _run("ruff", "format", "--check", "--no-cache", "engine")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes_on_engine():
    # The files and settings come from [tool.mypy]; the cache (.mypy_cache, git-ignored) keeps reruns fast.
    result = _run("mypy", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_noqa_names_its_rule_and_reason():
    bare = []
    for path in sorted([*ROOT.glob("engine/**/*.py"), *ROOT.glob("rfexplorer/**/*.py")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "# noqa" not in line:
                continue
            rest = line.split("# noqa", 1)[1]
            # "# noqa: CODE - reason" (or "(reason)"): a rule, then words after it
            if not rest.startswith(": ") or len(rest[2:].split(None, 1)) < 2:
                bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "a # noqa without its rule or reason:\n" + "\n".join(bare)


def test_engine_all_is_literal_and_names_the_public_api():
    import engine

    tree = ast.parse((ROOT / "engine" / "__init__.py").read_text(encoding="utf-8"))
    (value,) = [n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "__all__"]
    names = ast.literal_eval(value)  # raises on anything but literal strings
    assert names == ["__version__", *engine._PUBLIC]
    for name in names:
        assert getattr(engine, name) is not None
