"""``rfexplorer --install-desktop-entry`` / ``--uninstall-desktop-entry`` against a temporary XDG_DATA_HOME."""
import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rfexplorer import desktop_entry as de

ROOT = Path(__file__).resolve().parents[1]
FILES = ("applications/rfexplorer.desktop", "icons/hicolor/256x256/apps/rfexplorer.png",
         "icons/hicolor/scalable/apps/rfexplorer.svg")


def _entry(path: Path) -> dict:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def _files(home: Path) -> set:
    return {p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()}


def test_packaged_copies_match_packaging_folder():
    """The package data (what a wheel installs) is the same as packaging/ (what the README documents)."""
    for name in ("rfexplorer.desktop", "rfexplorer.svg", "rfexplorer.png"):
        assert (ROOT / "rfexplorer" / "resources" / name).read_bytes() == (ROOT / "packaging" / name).read_bytes(), \
            f"copy packaging/{name} to rfexplorer/resources/"


def test_install_then_uninstall_touches_exactly_the_three_files(tmp_path, monkeypatch):
    home = tmp_path / "xdg data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    (home / "applications").mkdir(parents=True)
    keep = home / "applications" / "other.desktop"
    keep.write_text("[Desktop Entry]\nType=Application\nName=other\nExec=other\n")
    written = de.install(command=["/opt/my apps/bin/rfexplorer"])
    assert {p.relative_to(home).as_posix() for p in written} == set(FILES)
    assert set(FILES) <= _files(home)
    entry = _entry(home / FILES[0])
    assert entry["Exec"] == '"/opt/my apps/bin/rfexplorer"' and entry["TryExec"] == "/opt/my apps/bin/rfexplorer"
    assert entry["Icon"] == "rfexplorer" and entry["Type"] == "Application"
    assert (home / FILES[1]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert de.png_size((home / FILES[1]).read_bytes()) == 256
    assert {p.relative_to(home).as_posix() for p in de.uninstall()} == set(FILES)
    assert not (_files(home) & set(FILES)) and keep.is_file()  # the user's other entry is untouched
    assert de.uninstall() == []


def test_data_home_follows_xdg_rules(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert de.data_home({"XDG_DATA_HOME": "/x/share"}) == Path("/x/share")
    assert de.data_home({"XDG_DATA_HOME": "relative/share"}) == Path.home() / ".local" / "share"
    assert de.data_home({}) == Path.home() / ".local" / "share"


def test_exec_quoting_follows_the_desktop_entry_spec():
    assert de.exec_quote("/usr/bin/rfexplorer") == "/usr/bin/rfexplorer"
    assert de.exec_quote("/a b/rf") == '"/a b/rf"'
    assert de.exec_quote('/a$b/"q"') == '"/a\\$b/\\"q\\""'
    assert de.exec_quote("/100%/rf") == "/100%%/rf"


def test_launcher_is_an_absolute_path(tmp_path):
    script = tmp_path / "bin" / "rfexplorer"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    assert de.launcher(str(script)) == [str(script.resolve())]
    command = de.launcher("/nonexistent/python-script")
    assert Path(command[0]).is_absolute()


def test_command_line_options_install_and_uninstall(tmp_path):
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path), HOME=str(tmp_path))
    env.pop("DISPLAY", None)  # no window is opened: these options exit before Qt
    run = [sys.executable, "-m", "rfexplorer.app"]
    proc = subprocess.run(run + ["--install-desktop-entry"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert set(FILES) <= _files(tmp_path) and proc.stdout.count("installed ") == 3
    exec_path = _entry(tmp_path / FILES[0])["TryExec"]
    assert Path(exec_path).is_absolute() and Path(exec_path).exists()
    proc = subprocess.run(run + ["--uninstall-desktop-entry"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and not (_files(tmp_path) & set(FILES))


def test_installed_entry_passes_desktop_file_validate(tmp_path):
    validate = shutil.which("desktop-file-validate")
    if validate is None:
        pytest.skip("desktop-file-validate is not installed (Debian: apt-get install desktop-file-utils)")
    de.install(tmp_path, command=["/opt/my apps/bin/rfexplorer"])
    for path in (ROOT / "packaging" / "rfexplorer.desktop", tmp_path / FILES[0]):
        proc = subprocess.run([validate, str(path)], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0 and "error" not in proc.stdout, proc.stdout + proc.stderr
