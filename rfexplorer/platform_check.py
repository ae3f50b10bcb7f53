"""Can Qt's platform plugin load here? Asked before the QApplication exists, so that a missing system library
becomes one sentence naming the packages to install instead of Qt's abort ("could not load the Qt platform
plugin xcb ... Aborted (core dumped)").

Nothing here creates a Qt object: PySide6 is only located (``importlib.util.find_spec``, without importing it)
to find ``PySide6/Qt/plugins/platforms/libqxcb.so`` and ``PySide6/Qt/lib/libQt6XcbQpa.so*``, whose shared-library
dependencies ``ldd`` resolves. Where ``ldd`` is missing, a throwaway child process loads the plugin with
``ctypes`` and reports the first library the loader could not find.

``RFEXPLORER_LDD`` names another program to run instead of ``ldd`` (a test hook: a script that prints
``libfoo.so.1 => not found`` shows the failure path without uninstalling anything).
"""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from engine.experiments.doctor import Check

LDD_ENV_VAR = "RFEXPLORER_LDD"

#: soname -> (Debian/Ubuntu apt package, Fedora dnf package)
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libXau.so.6": ("libxau6", "libXau"),
    "libXdmcp.so.6": ("libxdmcp6", "libXdmcp"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libGLdispatch.so.0": ("libglvnd0", "libglvnd"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libpng16.so.16": ("libpng16-16", "libpng"),
    "libexpat.so.1": ("libexpat1", "expat"),
    "libz.so.1": ("zlib1g", "zlib"),
    "libzstd.so.1": ("libzstd1", "libzstd"),
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)
_CANNOT_OPEN = re.compile(r"(\S+\.so[.\d]*): cannot open shared object file")
_OFFSCREEN_HINT = "QT_QPA_PLATFORM=offscreen rfexplorer"


def qt_dir() -> Optional[Path]:
    """PySide6's bundled Qt folder (``.../PySide6/Qt``), or None without PySide6; imports nothing."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "Qt"


def xcb_plugin_files(qt: Optional[Path] = None) -> list[Path]:
    """The xcb platform plugin and PySide6's libQt6XcbQpa library it links, those that exist."""
    qt = qt_dir() if qt is None else qt
    if qt is None:
        return []
    files = [qt / "plugins" / "platforms" / "libqxcb.so"]
    files += sorted((qt / "lib").glob("libQt6XcbQpa.so*"))[:1]
    return [f for f in files if f.is_file()]


def chosen_platform(env: Mapping[str, str] = os.environ) -> Optional[str]:
    """The platform plugin Qt will try first: QT_QPA_PLATFORM's first entry, else wayland in a Wayland
    session, else xcb with an X display; None when there is no display at all (Linux)."""
    wanted = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if wanted:
        return wanted
    if not sys.platform.startswith("linux"):
        return "native"
    if env.get("WAYLAND_DISPLAY"):
        return "wayland"
    if env.get("DISPLAY"):
        return "xcb"
    return None


def missing_from_ldd_output(text: str) -> list[str]:
    """The sonames ``ldd`` reported as ``not found`` (each once, in order)."""
    return list(dict.fromkeys(_NOT_FOUND.findall(text)))


def _run_ldd(files: Sequence[Path], ldd: str) -> str:
    out = []
    for f in files:
        proc = subprocess.run([*shlex.split(ldd), str(f)], capture_output=True, text=True, timeout=30)
        out.append(proc.stdout + proc.stderr)
    return "\n".join(out)


def _first_missing_via_ctypes(plugin: Path) -> list[str]:
    """Load the plugin in a child process; the loader names the first library it cannot find."""
    code = "import ctypes, sys\nctypes.CDLL(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", code, str(plugin)], capture_output=True, text=True, timeout=60)
    if proc.returncode == 0:
        return []
    found = _CANNOT_OPEN.search(proc.stderr)
    return [found.group(1)] if found else [f"(a library of {plugin.name})"]


def missing_libraries(files: Optional[Sequence[Path]] = None, *, ldd: Optional[str] = None,
                      which: Optional[Callable[[str], Optional[str]]] = None) -> list[str]:
    """Shared libraries the xcb plugin needs that the dynamic loader cannot find (empty: it can load)."""
    import shutil

    files = xcb_plugin_files() if files is None else list(files)
    if not files:
        return []
    ldd = ldd or os.environ.get(LDD_ENV_VAR) or (which or shutil.which)("ldd")
    if ldd:
        return missing_from_ldd_output(_run_ldd(files, ldd))
    return _first_missing_via_ctypes(files[0])


def install_commands(sonames: Sequence[str]) -> tuple[str, str]:
    """``sudo apt-get install ...`` and ``sudo dnf install ...`` for the known sonames (unknown ones skipped)."""
    apt = list(dict.fromkeys(PACKAGES[s][0] for s in sonames if s in PACKAGES))
    dnf = list(dict.fromkeys(PACKAGES[s][1] for s in sonames if s in PACKAGES))
    return ("sudo apt-get install " + " ".join(apt) if apt else "",
            "sudo dnf install " + " ".join(dnf) if dnf else "")


def missing_libraries_sentence(sonames: Sequence[str], needer: str = "Qt's xcb platform plugin") -> str:
    """One sentence: what ``needer`` is missing and the commands that install it."""
    apt, dnf = install_commands(sonames)
    unknown = [s for s in sonames if s not in PACKAGES]
    fixes = []
    if apt:
        fixes.append(f"install {'it' if len(sonames) == 1 else 'them'} with `{apt}` (Debian/Ubuntu) or `{dnf}` "
                     f"(Fedora)")
    if unknown:
        fixes.append(f"install the packages providing {', '.join(unknown)} (Debian: `apt-file search NAME`, "
                     f"Fedora: `dnf provides '*/NAME'`)")
    if "xcb" in needer:
        fixes.append(f"run it without a window as `{_OFFSCREEN_HINT}`")
    names = ", ".join(sonames[:-1]) + " and " + sonames[-1] if len(sonames) > 1 else sonames[0]
    return (f"rfexplorer cannot open a window: {needer} needs {names}, which "
            f"{'is' if len(sonames) == 1 else 'are'} not installed; {', or '.join(fixes)}.")


def import_error_sentence(exc: ImportError) -> str:
    """One sentence for a PySide6 module that failed to import, naming the missing library where it can."""
    found = _CANNOT_OPEN.search(str(exc))
    if found:
        return missing_libraries_sentence([found.group(1)], needer="Qt (PySide6)")
    return (f"rfexplorer cannot start: PySide6 cannot be imported ({exc}); reinstall it with "
            f"`pip install PySide6-Essentials`.")


NO_DISPLAY_SENTENCE = ("rfexplorer cannot open a window: neither DISPLAY nor WAYLAND_DISPLAY is set, so there is no "
                       "desktop session to show it in; start it from a desktop session (or with `ssh -X`), or run "
                       f"it without a window as `{_OFFSCREEN_HINT}`.")


def preflight(env: Mapping[str, str] = os.environ) -> Optional[str]:
    """None when the chosen Qt platform plugin should load, else the one sentence that says why not."""
    platform = chosen_platform(env)
    if platform is None or (platform == "xcb" and not env.get("DISPLAY")):
        return NO_DISPLAY_SENTENCE
    if platform != "xcb":
        return None  # offscreen, minimal, wayland, or not Linux: nothing to check before Qt
    missing = missing_libraries()
    return missing_libraries_sentence(missing) if missing else None


def qt_checks(env: Mapping[str, str] = os.environ) -> list[Check]:
    """The app's half of ``rfexplorer --check``: PySide6, the xcb plugin's libraries, a display."""
    qt = qt_dir()
    if qt is None:
        return [Check("PySide6", False, True, "not installed (pip install PySide6-Essentials)")]
    checks = [Check("PySide6", True, True, f"{_pyside_version(qt)} in {qt.parent}")]
    if sys.platform.startswith("linux"):
        files = xcb_plugin_files(qt)
        if not files:
            checks.append(Check("Qt xcb plugin", False, True, f"libqxcb.so not found under {qt / 'plugins'}"))
        else:
            missing = missing_libraries(files)
            detail = (missing_libraries_sentence(missing) if missing
                      else f"all libraries of {files[0].name} found")
            checks.append(Check("Qt xcb plugin", not missing, True, detail))
    platform = chosen_platform(env)
    no_display = platform is None or (platform == "xcb" and not env.get("DISPLAY"))
    checks.append(Check("Display", not no_display, True,
                        NO_DISPLAY_SENTENCE if no_display else f"Qt platform {platform}"
                        + (f" on DISPLAY={env['DISPLAY']}" if platform == "xcb" else "")))
    return checks


def _pyside_version(qt: Path) -> str:
    """PySide6's version from its package metadata (importing PySide6 is not needed for that)."""
    from importlib import metadata

    for dist in ("PySide6-Essentials", "PySide6"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown version"
