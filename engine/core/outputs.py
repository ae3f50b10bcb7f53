"""Writing output files safely: atomic writes (alone or as a group), never through a symbolic link, with
temporary files that are always removed, and checks that an output can be written before long work starts.

Every write goes to a temporary file in the destination's folder, named ``.<name>.<host>-<pid>-<random>.rfx.tmp``
and created with O_CREAT | O_EXCL | O_NOFOLLOW (so it can be neither an existing file nor a planted link), with
the permissions an ordinary ``open()`` would give (0666 minus the umask); it is flushed, fsynced and renamed
over the destination (``os.replace``, which replaces a link rather than following it), so a reader sees the old
file or the new one. The temporary file is removed on any failure (``finally``; SIGINT and SIGTERM reach it as
exceptions in the command-line tool) and at exit; one left by a killed run is removed by the next write into
its folder (:func:`clean_stale_temps`). Files that are appended to or read back (a sweep's ``rows.jsonl``)
are opened with O_NOFOLLOW through :func:`open_nofollow`. :mod:`engine.core.files` re-exports all of this.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import hashlib
import os
import re
import secrets
import signal
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence, Union

PathLike = Union[str, os.PathLike]


# ---------------------------------------------------------------------------------------------------------
# Atomic, symlink-safe writes
# ---------------------------------------------------------------------------------------------------------

#: Every temporary file the engine writes is named ``.<name>.<host>-<pid>-<random>.rfx.tmp`` in the folder of
#: the file it becomes (``<host>`` is a short hash of the machine's name).
TEMP_SUFFIX = ".rfx.tmp"
#: Another process's temporary file is stale, and removed by the next write into its folder, when that process
#: is gone from this machine or when the file has not been written to for this many seconds.
STALE_TEMP_SECONDS = 60.0
_TEMP_NAME = re.compile(r"^\..*\.(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]{8}\.rfx\.tmp$", re.DOTALL)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN_EXTRA = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_LIVE_TEMPS: set = set()  # temporary files this process has created and not yet renamed or removed
_LIVE_LOCK = threading.Lock()


class OutputPathError(OSError):
    """An output path that cannot or must not be written; ``str()`` is one sentence."""

    def __init__(self, sentence: str, code: int = errno.EINVAL) -> None:
        super().__init__(code, sentence)

    def __str__(self) -> str:
        return str(self.strerror)


class UnsafeOutputError(OutputPathError):
    """An output path that is a symbolic link (or not a regular file): refused, never followed."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence, errno.ELOOP)


@functools.lru_cache(maxsize=1)
def _host_tag() -> str:
    return hashlib.blake2s(socket.gethostname().encode("utf-8", "replace"), digest_size=4).hexdigest()


def _temp_name(name: str) -> str:
    return f".{name[:40]}.{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _symlink_error(path: PathLike, verb: str) -> UnsafeOutputError:
    return UnsafeOutputError(f"{path} is a symbolic link; refusing to {verb} through it")


def refuse_symlink(path: PathLike, verb: str = "write") -> None:
    """Raise :class:`UnsafeOutputError` if ``path`` itself is a symbolic link (a missing path is fine)."""
    if os.path.islink(path):
        raise _symlink_error(path, verb)


def open_nofollow(path: PathLike, flags: int, *, verb: str = "write") -> int:
    """``os.open(path, flags | O_NOFOLLOW)`` (permissions 0666 minus the umask when it creates the file): a
    symbolic link, even one planted between a check and the open, and anything but a regular file (a folder,
    a FIFO, a device) are refused with :class:`UnsafeOutputError`. Returns the file descriptor."""
    refuse_symlink(path, verb)
    nonblock = getattr(os, "O_NONBLOCK", 0)  # a planted FIFO must not hang the open
    try:
        fd = os.open(path, flags | _NOFOLLOW | _OPEN_EXTRA | nonblock, 0o666)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
            raise _symlink_error(path, verb) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeOutputError(f"{path} is not a regular file; refusing to {verb} it")
        if nonblock and hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes_nofollow(path: PathLike, *, verb: str = "read") -> bytes:
    """The bytes of a regular file, opened without following a symbolic link (see :func:`open_nofollow`);
    FileNotFoundError where there is none."""
    with os.fdopen(open_nofollow(path, os.O_RDONLY, verb=verb), "rb") as fh:
        return fh.read()


def _new_temp(folder: Path, name: str) -> tuple[int, Path]:
    """Create a new temporary file for ``name`` in ``folder`` with O_CREAT | O_EXCL | O_NOFOLLOW (never an
    existing file, never through a planted link), registered for removal. Returns (fd, path)."""
    for _ in range(100):
        tmp = folder / _temp_name(name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _OPEN_EXTRA, 0o666)
        except FileExistsError:
            continue
        with _LIVE_LOCK:
            _LIVE_TEMPS.add(str(tmp))
        return fd, tmp
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(folder))


def _forget_temp(tmp: Path) -> None:
    with _LIVE_LOCK:
        _LIVE_TEMPS.discard(str(tmp))


def _drop_temp(tmp: Path) -> None:
    """Remove one of this process's temporary files (gone already is fine)."""
    try:
        os.unlink(tmp)
    except OSError:
        pass
    _forget_temp(tmp)


@atexit.register
def remove_live_temps() -> None:
    """Remove every temporary file this process is still writing (at exit; the writers' own ``finally``
    clauses normally have already)."""
    with _LIVE_LOCK:
        live = list(_LIVE_TEMPS)
    for name in live:
        _drop_temp(Path(name))


def _pid_gone(pid: int) -> bool:
    if os.name != "posix" or pid <= 0:  # os.kill(pid, 0) means something else on Windows
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, owned by someone else
        return False
    return False


def clean_stale_temps(folder: PathLike, *, max_age_s: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove the stale temporary files of the engine's naming pattern in ``folder`` (left by a killed run):
    those of a process gone from this machine, and those not written to for ``max_age_s`` seconds. A file of
    a live writer is younger than that (a write takes seconds), and this process's own are never touched;
    nothing that does not match the pattern is. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = [e for e in os.scandir(os.fspath(folder)) if e.name.endswith(TEMP_SUFFIX)]
    except OSError:
        return removed
    with _LIVE_LOCK:
        mine = {Path(p).name for p in _LIVE_TEMPS}
    host, me, now = _host_tag(), os.getpid(), time.time()
    for entry in entries:
        m = _TEMP_NAME.match(entry.name)
        if m is None or entry.name in mine:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            continue
        pid, here = int(m["pid"]), m["host"] == host
        gone = here and pid != me and _pid_gone(pid)
        if gone or now - st.st_mtime > max_age_s:
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def _write_temp(dest: Path, data: bytes) -> Path:
    """The bytes for ``dest`` in a new temporary file next to it, flushed and fsynced; returns its path."""
    fd, tmp = _new_temp(_folder(dest), dest.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        _drop_temp(tmp)
        raise
    return tmp


def _fsync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable (best effort; not every platform can fsync a folder)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while a group of files is renamed (their Python handlers run right after),
    so Ctrl-C or a polite kill cannot land between two renames. Only the main thread can do this; in another
    thread the handlers run in the main thread anyway, never in the middle of this one's renames."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list = []
    previous: dict = {}
    try:
        for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
            if sig is not None and signal.getsignal(sig) is not None:  # None: a handler Python cannot restore
                previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


def _backup(dest: Path):
    """What puts ``dest`` back if a later rename of its group fails: a hard link to it under a temporary name,
    its bytes where the file system has no hard links, or None where there is no ``dest``."""
    if not os.path.lexists(dest):
        return None
    for _ in range(100):
        link = _folder(dest) / _temp_name(dest.name)
        with _LIVE_LOCK:
            _LIVE_TEMPS.add(str(link))
        try:
            os.link(dest, link, follow_symlinks=False)
            return link
        except FileExistsError:
            _forget_temp(link)
        except (OSError, NotImplementedError):  # no hard links here
            _forget_temp(link)
            return read_bytes_nofollow(dest)
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(_folder(dest)))


def _restore(dest: Path, backup) -> None:
    """Undo the rename over ``dest`` (best effort: the error that caused it is the one reported)."""
    try:
        if backup is None:
            os.unlink(dest)
        elif isinstance(backup, Path):
            os.replace(backup, dest)
            _forget_temp(backup)
        else:
            tmp = _write_temp(dest, backup)
            os.replace(tmp, dest)
            _forget_temp(tmp)
    except OSError:
        pass


def _commit(temps: Sequence[Path], dests: Sequence[Path]) -> None:
    """Rename each temporary file over its destination, in order; if one fails, the destinations renamed
    already get their previous content back (or are removed where there was none)."""
    backups: list = []
    renamed = 0
    with _signals_deferred() if len(dests) > 1 else contextlib.nullcontext():  # one rename is atomic anyway
        try:
            for tmp, dest in zip(temps, dests):
                backups.append(_backup(dest) if len(dests) > 1 else None)
                renamed += 1  # counted first: an exception right after the rename still undoes it
                os.replace(tmp, dest)
                _forget_temp(tmp)
        except BaseException:
            if renamed and os.path.lexists(temps[renamed - 1]):  # the failed rename did not happen
                renamed -= 1
            for i in reversed(range(renamed)):
                _restore(dests[i], backups[i])
            raise
        finally:
            for b in backups:
                if isinstance(b, Path):
                    _drop_temp(b)


def atomic_write_files(items: Sequence[tuple]) -> list[Path]:
    """Write several files as one: ``items`` is [(path, bytes)]. Afterwards every path holds its new bytes,
    or, when this raises, every path is as it was before (old content, or still absent).

    Order, and what a reader sees if the process is killed (SIGKILL, power loss) at each point:

    1. each file's bytes go to a temporary file next to it (created with O_CREAT | O_EXCL | O_NOFOLLOW,
       see :data:`TEMP_SUFFIX`), flushed and fsynced: a kill leaves the destinations as they were, and the
       temporary files are removed by the next write into that folder (:func:`clean_stale_temps`);
    2. the temporary files are renamed over their destinations in the order of ``items``, with SIGINT and
       SIGTERM held back until the last rename (each destination's previous version is kept as a hard link
       until then, to put back if a rename fails): a kill between two renames leaves the first files new and
       the later ones old, so put the file that readers trust (the JSON) last;
    3. the folders are fsynced: every file is new.

    A destination that is a symbolic link is refused (:class:`UnsafeOutputError`) before anything is
    written; the rename would replace a link planted later, never write through it. Returns the paths."""
    dests = [Path(p) for p, _ in items]
    for dest in dests:
        refuse_symlink(dest)
    folders = list(dict.fromkeys(_folder(d) for d in dests))
    for folder in folders:
        clean_stale_temps(folder)
    temps: list[Path] = []
    try:
        for dest, (_, data) in zip(dests, items):
            temps.append(_write_temp(dest, bytes(data)))
        _commit(temps, dests)
    finally:
        with _LIVE_LOCK:
            left = [tmp for tmp in temps if str(tmp) in _LIVE_TEMPS]  # not renamed
        for tmp in left:
            _drop_temp(tmp)
    for folder in folders:
        _fsync_folder(folder)
    return dests


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write_files` with one file): a temporary file in the
    same folder, fsync, then os.replace. On any failure, or SIGINT/SIGTERM turned into an exception, the
    temporary file is removed and an existing ``path`` is left untouched. Returns ``path``."""
    return atomic_write_files([(path, data)])[0]


def atomic_write_text(path: PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for text, encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------------------
# Checks before long work
# ---------------------------------------------------------------------------------------------------------


def _probe_writable(folder: Path) -> None:
    """Create and remove a temporary file in ``folder`` (root ignores permission bits, so ask the system)."""
    try:
        fd, tmp = _new_temp(folder, "write-check")
    except OSError as exc:
        raise OutputPathError(
            f"cannot write into the folder {folder} ({exc.strerror or exc})", exc.errno or errno.EACCES
        ) from None
    os.close(fd)
    _drop_temp(tmp)


def check_output_folder(folder: PathLike, *, what: str = "output folder") -> Path:
    """Check, before any long work, that files can be written into ``folder`` without creating anything: it is
    a writable folder, or it can be created (its nearest existing parent is a writable folder). Raises
    :class:`OutputPathError` with one sentence; returns ``Path(folder)``."""
    folder = Path(folder) if str(folder) else Path(".")
    if os.path.lexists(folder) and not folder.is_dir():
        raise OutputPathError(f"the {what} {folder} is a file", errno.ENOTDIR)
    base = folder
    while not base.is_dir():
        if os.path.lexists(base):
            raise OutputPathError(f"the {what} {folder} cannot be created: {base} is a file", errno.ENOTDIR)
        if base.parent == base:
            break
        base = base.parent
    _probe_writable(base)
    return folder


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_output_file(path: PathLike, *, what: str = "output file") -> Path:
    """Check, before any long work, that ``path`` can be written: a usable file name, not a folder nor a
    symbolic link, in an existing folder where a file can be created. Raises :class:`OutputPathError` with one
    sentence; returns ``Path(path)``."""
    text = os.fspath(path)
    if "\0" in text:
        raise OutputPathError(f"the {what} name {text!r} contains a NUL character")
    p = Path(text)
    if not p.name or text.endswith(("/", os.sep)):
        raise OutputPathError(f"the {what} {text} names a folder, not a file")
    folder = _folder(p)
    if not folder.exists():
        raise OutputPathError(f"the folder {folder} of the {what} does not exist", errno.ENOENT)
    if not folder.is_dir():
        raise OutputPathError(f"the folder {folder} of the {what} is a file", errno.ENOTDIR)
    limit = _name_max(folder)
    if len(os.fsencode(p.name)) > limit:
        raise OutputPathError(
            f"the {what} name {p.name[:30]}... is longer than the {limit} bytes a file name may have",
            errno.ENAMETOOLONG,
        )
    refuse_symlink(p)
    if p.is_dir():
        raise OutputPathError(f"the {what} {p} is a folder", errno.EISDIR)
    _probe_writable(folder)
    return p


__all__ = [
    "STALE_TEMP_SECONDS",
    "TEMP_SUFFIX",
    "OutputPathError",
    "PathLike",
    "UnsafeOutputError",
    "atomic_write_bytes",
    "atomic_write_files",
    "atomic_write_text",
    "check_output_file",
    "check_output_folder",
    "clean_stale_temps",
    "open_nofollow",
    "read_bytes_nofollow",
    "refuse_symlink",
    "remove_live_temps",
]
