"""The start-up checks: ``rfexplorer-cli doctor``, ``rfexplorer --check`` and the Qt platform preflight.

The preflight's failure path is exercised without uninstalling anything: ``RFEXPLORER_LDD`` points the check at
a fake ``ldd`` that reports libraries as ``not found``.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import cli
from engine.experiments.doctor import Check, exit_status, format_checklist, run_checks
from rfexplorer import platform_check as pc

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb check is Linux-only")

# The table of the issue (#18): soname -> (Debian/Ubuntu package, Fedora package)
EXPECTED_PACKAGES = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
}

LDD_SAMPLE = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /x/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
"""


@pytest.fixture
def fake_ldd(tmp_path):
    """A program that prints ldd lines saying libxcb-icccm.so.4 and libxcb-keysyms.so.1 are missing."""
    script = tmp_path / "fake-ldd"
    script.write_text("#!/bin/sh\ncat <<'EOF'\n" + LDD_SAMPLE + "EOF\n")
    script.chmod(0o755)
    return str(script)


def test_ldd_output_gives_each_missing_soname_once():
    assert pc.missing_from_ldd_output(LDD_SAMPLE) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert pc.missing_from_ldd_output("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == []


def test_every_library_of_the_issue_maps_to_its_apt_and_dnf_package():
    for soname, packages in EXPECTED_PACKAGES.items():
        assert pc.PACKAGES[soname] == packages, soname
    apt, dnf = pc.install_commands(["libunknown.so.9", "libxcb-shape.so.0", "libxcb-xkb.so.1"])
    assert apt == "sudo apt-get install libxcb-shape0 libxcb-xkb1"
    assert dnf == "sudo dnf install libxcb"  # each package once


def test_missing_libraries_sentence_names_libraries_and_both_install_commands():
    text = pc.missing_libraries_sentence(["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libodd.so.7"])
    assert "\n" not in text and text.count(". ") == 0 and text.endswith(".")
    for part in ("libxcb-icccm.so.4 libxcb-keysyms.so.1".split()
                 + ["sudo apt-get install libxcb-icccm4 libxcb-keysyms1",
                    "sudo dnf install xcb-util-wm xcb-util-keysyms", "libodd.so.7", "QT_QPA_PLATFORM=offscreen"]):
        assert part in text, part


def test_platform_choice_follows_qt_rules():
    assert pc.chosen_platform({"QT_QPA_PLATFORM": "offscreen"}) == "offscreen"
    assert pc.chosen_platform({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":0"}) == "wayland"
    if sys.platform.startswith("linux"):
        assert pc.chosen_platform({"DISPLAY": ":0"}) == "xcb"
        assert pc.chosen_platform({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}) == "wayland"
        assert pc.chosen_platform({}) is None


def test_offscreen_and_wayland_skip_the_xcb_check(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the xcb libraries were checked")

    monkeypatch.setattr(pc, "missing_libraries", boom)
    assert pc.preflight({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert pc.preflight({"QT_QPA_PLATFORM": "minimal", "DISPLAY": ":0"}) is None
    assert pc.preflight({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}) is None


@linux_only
def test_preflight_reports_no_display_and_missing_libraries(monkeypatch, fake_ldd):
    assert pc.preflight({}) == pc.NO_DISPLAY_SENTENCE
    assert pc.preflight({"QT_QPA_PLATFORM": "xcb"}) == pc.NO_DISPLAY_SENTENCE
    assert "QT_QPA_PLATFORM=offscreen" in pc.NO_DISPLAY_SENTENCE
    monkeypatch.setenv(pc.LDD_ENV_VAR, fake_ldd)
    if not pc.xcb_plugin_files():
        pytest.skip("this PySide6 has no xcb plugin")
    text = pc.preflight({"DISPLAY": ":0"})
    assert text is not None and "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in text


@linux_only
def test_ctypes_fallback_names_the_library_the_loader_misses(tmp_path):
    """Without ldd, a child process loads the plugin; a library that needs a missing one is named."""
    fake = tmp_path / "libneeds.so"
    fake.write_bytes(b"not an ELF file")
    assert pc.missing_libraries([fake], which=lambda name: None) == ["(a library of libneeds.so)"]
    files = pc.xcb_plugin_files()
    if not files:
        pytest.skip("this PySide6 has no xcb plugin")
    assert pc.missing_libraries(files, which=lambda name: None)[:1] == pc.missing_libraries(files)[:1]


def test_import_error_sentence_maps_the_missing_library():
    text = pc.import_error_sentence(ImportError("libEGL.so.1: cannot open shared object file: No such file"))
    assert "sudo apt-get install libegl1" in text and "sudo dnf install libglvnd-egl" in text


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(extra)
    return env


@linux_only
def test_app_exits_2_with_one_sentence_when_the_plugin_cannot_load(fake_ldd, tmp_path):
    """End to end: the app under X11 with two libraries 'missing' exits 2 before any Qt object exists."""
    if not pc.xcb_plugin_files():
        pytest.skip("this PySide6 has no xcb plugin")
    env = _env(DISPLAY=":987", RFEXPLORER_LDD=fake_ldd, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "rfexplorer.app"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in lines[0], proc.stderr
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms" in lines[0]


@linux_only
def test_app_without_any_display_exits_2_with_one_sentence(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rfexplorer.app"], cwd=ROOT, env=_env(HOME=str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == pc.NO_DISPLAY_SENTENCE


def test_checklist_format_and_exit_status():
    checks = [Check("a", True, True, "fine"), Check("gpu", False, False, "none"), Check("qt", False, True, "x")]
    lines = format_checklist(checks).splitlines()
    assert lines[0].startswith("[ ok ] a") and lines[1].startswith("[ -- ] gpu") and lines[2].startswith("[FAIL] qt")
    assert exit_status(checks) == 1 and exit_status(checks[:2]) == 0


def test_engine_checks_report_torch_cpu_capability_and_datasets():
    import torch

    checks = {c.name: c for c in run_checks(str(DATA))}
    assert {"Python", "torch", "ATen CPU capability", "BLAS", "GPU", "Datasets", "Ray", "h5py"} <= set(checks)
    assert checks["ATen CPU capability"].detail == torch.backends.cpu.get_cpu_capability()
    assert not checks["GPU"].required and not checks["Ray"].required and not checks["h5py"].required
    datasets = checks["Datasets"].detail
    assert checks["Datasets"].ok and "mnist-mini" in datasets and str(DATA) in datasets
    if (DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        assert "mnist" in datasets.split("; ")[0].split(", ")


def test_software_versions_record_the_aten_cpu_capability():
    import torch

    from engine.io.results import software_versions

    assert software_versions()["aten_cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_cli_doctor_prints_a_checklist_and_json(capsys):
    assert cli.main(["doctor", "--json", "--data-dir", str(DATA)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("[ ok ] torch") for line in out)
    checks = json.loads(out[-1])["checks"]
    assert {"name", "ok", "required", "detail"} == set(checks[0]) and any(c["name"] == "Datasets" for c in checks)


def test_cli_doctor_fails_when_python_is_too_old(monkeypatch, capsys):
    monkeypatch.setattr("engine.experiments.doctor.MIN_PYTHON", (99, 0))
    assert cli.main(["doctor"]) == 1
    assert "[FAIL] Python" in capsys.readouterr().out


@linux_only
def test_app_check_prints_engine_and_qt_checks(fake_ldd, tmp_path):
    env = _env(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "rfexplorer.app", "--check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("[ ok ] torch", "[ ok ] Datasets", "[ ok ] PySide6", "[ ok ] Display"):
        assert name in proc.stdout, proc.stdout
    if pc.xcb_plugin_files():
        assert "[ ok ] Qt xcb plugin" in proc.stdout
        env[pc.LDD_ENV_VAR] = fake_ldd
        proc = subprocess.run([sys.executable, "-m", "rfexplorer.app", "--check"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1 and "[FAIL] Qt xcb plugin" in proc.stdout
        assert "sudo apt-get install libxcb-icccm4" in proc.stdout
