"""The app on a real X server (Xvfb) with Qt's xcb plugin, as on a desktop: the window maps, a run finishes, the
process exits 0. Skipped with a reason where Xvfb or xwininfo is missing (Debian: apt-get install xvfb
x11-utils, plus the xcb libraries that ``rfexplorer --check`` lists). About 15 s.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 90
WINDOW_CLASS = re.compile(r'\("[^"]*" "rfexplorer"\)')  # xwininfo -tree: ("instance" "class") of a window


def _needs(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: apt-get install xvfb x11-utils)")


@pytest.fixture
def x_display():
    """A private Xvfb server; yields its DISPLAY (e.g. ':3')."""
    if not sys.platform.startswith("linux"):
        pytest.skip("Xvfb runs on Linux")
    _needs("Xvfb", "xwininfo")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24",
                               "-nolisten", "tcp"], pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number.isdigit():
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _mapped_app_window(display: str) -> bool:
    """True when one of the app's top-level windows, at least 200 px wide, is viewable on ``display``."""
    env = dict(os.environ, DISPLAY=display)
    tree = subprocess.run(["xwininfo", "-root", "-tree"], env=env, capture_output=True, text=True, timeout=10)
    for line in tree.stdout.splitlines():
        if not WINDOW_CLASS.search(line):
            continue
        found = re.match(r"\s*(0x[0-9a-f]+).*\s(\d+)x(\d+)[+-]", line)
        if not found or int(found.group(2)) < 200:
            continue
        info = subprocess.run(["xwininfo", "-id", found.group(1)], env=env, capture_output=True, text=True,
                              timeout=10)
        if "Map State: IsViewable" in info.stdout:
            return True
    return False


def test_app_maps_its_window_finishes_a_run_and_exits_0_under_x11(x_display, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "RFEXPLORER_LDD")}
    env.update(DISPLAY=x_display, QT_QPA_PLATFORM="xcb", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path),
               XDG_DATA_HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path))
    app = subprocess.Popen([sys.executable, "-m", "rfexplorer.app", "--train", "--quit-when-done"], cwd=ROOT,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mapped = False
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while app.poll() is None and time.monotonic() < deadline:
            if not mapped and _mapped_app_window(x_display):
                mapped = True
            time.sleep(0.1)
        if app.poll() is None:
            pytest.fail(f"the app did not exit within {TIMEOUT_S} s")
    finally:
        if app.poll() is None:
            app.kill()
        out, err = app.communicate(timeout=30)
    assert app.returncode == 0, err[-3000:]
    assert mapped, f"no rfexplorer window was mapped on the X server; stderr:\n{err[-3000:]}"
    assert re.search(r"rfexplorer: run finished: test accuracy \d+\.\d\d% after \d+ epochs", err), err[-3000:]
    assert "Traceback" not in err and "could not load the Qt platform plugin" not in err
