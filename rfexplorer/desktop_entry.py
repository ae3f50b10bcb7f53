"""``rfexplorer --install-desktop-entry`` / ``--uninstall-desktop-entry``: the app in the user's menu.

The desktop file and the icons ship as package data (``rfexplorer/resources/``; copies of ``packaging/``), so
this works from an installed wheel. They go into the user's XDG data folder ($XDG_DATA_HOME, else
~/.local/share): ``applications/rfexplorer.desktop``, ``icons/hicolor/256x256/apps/rfexplorer.png`` and
``icons/hicolor/scalable/apps/rfexplorer.svg``. ``Exec`` is the absolute path of the installed ``rfexplorer``
command (the running script, else the one on PATH, else this Python with ``-m rfexplorer.app``). Uninstalling
removes exactly those three files.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Mapping, Optional, Sequence

APP_ID = "rfexplorer"
DESKTOP_FILE = f"{APP_ID}.desktop"


def data_home(env: Mapping[str, str] = os.environ) -> Path:
    """$XDG_DATA_HOME when it is an absolute path (the spec ignores relative ones), else ~/.local/share."""
    value = env.get("XDG_DATA_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".local" / "share"


def _resource(name: str) -> bytes:
    return resources.files("rfexplorer.resources").joinpath(name).read_bytes()


def png_size(data: bytes) -> int:
    """Width of a PNG image, from its IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("the icon is not a PNG file")
    return struct.unpack(">I", data[16:20])[0]


def targets(home: Path) -> dict[str, Path]:
    """Where each packaged file goes, by resource name."""
    size = png_size(_resource(f"{APP_ID}.png"))
    icons = home / "icons" / "hicolor"
    return {DESKTOP_FILE: home / "applications" / DESKTOP_FILE,
            f"{APP_ID}.png": icons / f"{size}x{size}" / "apps" / f"{APP_ID}.png",
            f"{APP_ID}.svg": icons / "scalable" / "apps" / f"{APP_ID}.svg"}


def launcher(argv0: Optional[str] = None) -> list[str]:
    """The command line that starts the app: the installed ``rfexplorer`` script as an absolute path."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if argv0 and Path(argv0).name == APP_ID and Path(argv0).is_file():
        return [str(Path(argv0).resolve())]
    found = shutil.which(APP_ID)
    if found:
        return [str(Path(found).resolve())]
    return [str(Path(sys.executable).resolve()), "-m", "rfexplorer.app"]


def exec_quote(arg: str) -> str:
    """One argument of a desktop file's Exec key (quoted where the spec asks for it, % doubled)."""
    arg = arg.replace("%", "%%")
    if not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`"):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def desktop_text(command: Sequence[str]) -> str:
    """The packaged desktop file with Exec and TryExec pointing at ``command``."""
    exec_line = " ".join(exec_quote(a) for a in command)
    lines = []
    for line in _resource(DESKTOP_FILE).decode("utf-8").splitlines():
        if line.startswith("Exec="):
            line = f"Exec={exec_line}".replace("\\", "\\\\")  # string-type values escape backslashes again
        elif line.startswith("TryExec="):
            line = f"TryExec={command[0]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def install(home: Optional[Path] = None, command: Optional[Sequence[str]] = None) -> list[Path]:
    """Write the desktop file and the icons; returns the files written."""
    home = data_home() if home is None else home
    command = launcher() if command is None else list(command)
    written = []
    for name, dest in targets(home).items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = desktop_text(command).encode("utf-8") if name == DESKTOP_FILE else _resource(name)
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
        written.append(dest)
    _refresh_caches(home)
    return written


def uninstall(home: Optional[Path] = None) -> list[Path]:
    """Remove the files :func:`install` writes; returns those that were there."""
    home = data_home() if home is None else home
    removed = []
    for dest in targets(home).values():
        if dest.is_file():
            dest.unlink()
            removed.append(dest)
    _refresh_caches(home)
    return removed


def _refresh_caches(home: Path) -> None:
    """Best effort: let menus and icon themes see the change now rather than at the next login."""
    for tool, args in (("update-desktop-database", [str(home / "applications")]),
                       ("gtk-update-icon-cache", ["-f", "-t", "-q", str(home / "icons" / "hicolor")])):
        exe = shutil.which(tool)
        if exe and Path(args[-1]).is_dir():
            subprocess.run([exe, *args], capture_output=True, timeout=30, check=False)


def main(action: str) -> int:
    """``install`` or ``uninstall``, reporting each file on stdout; 2 with one sentence when it fails."""
    try:
        files = install() if action == "install" else uninstall()
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"rfexplorer: cannot {action} the desktop entry: {exc.strerror or exc}{where}.", file=sys.stderr)
        return 2
    verb = "installed" if action == "install" else "removed"
    for f in files:
        print(f"{verb} {f}")
    if not files:
        print("no desktop entry was installed")
    return 0
