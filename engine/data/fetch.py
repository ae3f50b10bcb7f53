"""Fetching the full MNIST-family datasets (MNIST, Fashion-MNIST, KMNIST) into the data root.

:func:`fetch_dataset` downloads the four IDX files of a dataset, decompresses them and puts them where
:func:`engine.data.load_torchvision` (torchvision's ``MNIST(root, download=False)`` and its subclasses) reads
them: ``<root>/<MNIST|FashionMNIST|KMNIST>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``. torchvision
needs nothing else there (its existence check looks for exactly these four decompressed files).

Downloads go through pooch (one temporary file per download, deleted on any failure). A file is checked
before it is put in place, and a file that fails a check is refused and never left in the data folder:

- its gzip stream must be complete and intact;
- the decompressed file must have the exact IDX size and header (magic number, count, 28 x 28 images,
  labels 0-9);
- its content must match a known digest: the sha256 of the *decompressed* file where it is known (every
  MNIST file, and the Fashion-MNIST label files), so a mirror that recompresses still verifies; otherwise
  the md5 of the ``.gz`` file as torchvision lists it (``torchvision.datasets.FashionMNIST.resources`` and
  ``KMNIST.resources``, read at run time), which a recompressed copy does not pass.

Files already in place that pass the checks are kept, so a rerun after a failure or a cancel only fetches
what is missing; a damaged one is removed and fetched again.

Mirrors are tried in order for each file: those given (``--mirror``), else those in ``$RFEXPLORER_MIRRORS``
(space or comma separated), else the ones the installed torchvision lists for the dataset (its class
attribute ``mirrors``, read at run time). A mirror is a URL prefix: the file's URL is the mirror followed by
the file name (``train-images-idx3-ubyte.gz``).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from engine.data.fetch_checks import CHUNK, FILES, IdxFile, check_idx_file, problem_in_place, sha256_of
from engine.data.named import TORCHVISION_DATASETS, PathLike, resolve_data_root

#: Environment variable with mirror URL prefixes (space or comma separated), tried in order.
MIRRORS_ENV_VAR = "RFEXPLORER_MIRRORS"
#: The datasets :func:`fetch_dataset` can fetch.
FETCHABLE = tuple(TORCHVISION_DATASETS)
#: URL schemes a mirror may use (those pooch downloads).
MIRROR_SCHEMES = ("http", "https", "ftp")
#: Folders of interrupted fetches (killed processes) older than this are removed by the next fetch.
STALE_TEMP_S = 3600
TEMP_PREFIX = ".fetch-"


class FetchError(RuntimeError):
    """A dataset could not be fetched (the message is one sentence: which file, from where, and why)."""


class FetchCancelled(Exception):
    """The fetch was cancelled (files finished before are kept; the one in progress is discarded)."""


class _Refused(Exception):
    """One mirror's copy of one file could not be used (the message is a phrase following the URL)."""


@dataclass(frozen=True)
class FetchProgress:
    """What :func:`fetch_dataset` reports to its ``progress`` callback."""

    dataset: str
    file: str  #: the decompressed file's name
    index: int  #: 0-based number of the file
    n_files: int
    stage: str  #: "download", "verify", "failed" (this mirror; the next is tried), "kept" (in place) or "done"
    done: int = 0  #: bytes of this file downloaded so far
    total: Optional[int] = None  #: bytes of this download (None where the server does not say)
    url: str = ""
    note: str = ""  #: for "failed": why this mirror's copy was refused (a phrase following the URL)

    @property
    def fraction(self) -> float:
        """How far the whole fetch is, 0..1 (each file counts the same)."""
        part = (
            1.0
            if self.stage in ("verify", "kept", "done")
            else (min(1.0, self.done / self.total) if self.total else 0.0)
        )
        return (self.index + part) / max(self.n_files, 1)


ProgressFn = Callable[[FetchProgress], None]


@dataclass
class FetchResult:
    dataset: str
    folder: Path  #: the raw/ folder that holds the files
    fetched: list = field(default_factory=list)  #: names of the files downloaded now
    kept: list = field(default_factory=list)  #: names of the files that were already in place and passed
    urls: list = field(default_factory=list)  #: where each fetched file came from

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "folder": str(self.folder),
            "fetched": list(self.fetched),
            "kept": list(self.kept),
            "urls": list(self.urls),
        }


# ---------------------------------------------------------------------------------------------------------
# Where from and where to
# ---------------------------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if name not in FILES:
        raise FetchError(f"there is no dataset {name!r} to fetch; choose one of: {', '.join(FETCHABLE)}")


def _torchvision_class(name: str):
    import torchvision.datasets as tvd  # heavy: only fetching needs it

    return getattr(tvd, TORCHVISION_DATASETS[name])


def default_mirrors(name: str) -> list[str]:
    """The mirrors the installed torchvision lists for ``name`` (its class attribute ``mirrors``)."""
    _check_name(name)
    return [str(m) for m in getattr(_torchvision_class(name), "mirrors", ())]


def torchvision_md5(name: str) -> dict[str, str]:
    """{.gz file name: md5} as the installed torchvision lists them (its class attribute ``resources``)."""
    _check_name(name)
    out = {}
    for entry in getattr(_torchvision_class(name), "resources", ()):
        url, md5 = entry
        out[os.path.basename(str(url))] = str(md5).lower()
    return out


def split_mirrors(text: str) -> list[str]:
    return [m for m in re.split(r"[\s,]+", text or "") if m]


def resolve_mirrors(name: str, mirrors: Sequence[str] = ()) -> list[str]:
    """The mirrors to try, in order: ``mirrors`` if any, else $RFEXPLORER_MIRRORS, else torchvision's."""
    chosen = [m for m in mirrors if m] or split_mirrors(os.environ.get(MIRRORS_ENV_VAR, "")) or default_mirrors(name)
    for m in chosen:
        scheme = m.split("://", 1)[0].lower() if "://" in m else ""
        if scheme not in MIRROR_SCHEMES:
            raise FetchError(
                f"the mirror {m!r} is not a URL starting with {', '.join(s + '://' for s in MIRROR_SCHEMES)}"
            )
    if not chosen:
        raise FetchError(f"no mirror is known for {name}; give one with --mirror URL or ${MIRRORS_ENV_VAR}")
    return list(dict.fromkeys(chosen))


def raw_folder(name: str, data_dir: PathLike | None = None) -> Path:
    """``<data root>/<torchvision class name>/raw``: where the dataset's files go."""
    _check_name(name)
    return resolve_data_root(data_dir) / TORCHVISION_DATASETS[name] / "raw"


def _url(mirror: str, file_name: str) -> str:
    return mirror + ("" if mirror.endswith("/") else "/") + file_name


@dataclass
class DatasetStatus:
    name: str
    folder: Path
    present: list = field(default_factory=list)  #: files in place that pass the size and header checks
    missing: list = field(default_factory=list)
    damaged: dict = field(default_factory=dict)  #: file -> what is wrong

    @property
    def complete(self) -> bool:
        return len(self.present) == len(FILES[self.name])

    def describe(self) -> str:
        if self.complete:
            return "present"
        if not self.present and not self.damaged:
            return "missing"
        parts = [f"{len(self.present)} of {len(FILES[self.name])} files"]
        if self.damaged:
            parts.append(f"{len(self.damaged)} damaged")
        return "incomplete (" + ", ".join(parts) + ")"


def dataset_status(name: str, data_dir: PathLike | None = None, verify: bool = False) -> DatasetStatus:
    """Which of the dataset's files are in place (size and header checked; with ``verify``, sha256 too)."""
    status = DatasetStatus(name, raw_folder(name, data_dir))
    for spec in FILES[name]:
        path = status.folder / spec.name
        if not path.is_file():
            status.missing.append(spec.name)
            continue
        try:
            problem = problem_in_place(path, spec) if verify else check_idx_file(path, spec)
        except OSError as exc:
            problem = f"cannot be read ({exc.strerror or exc})"
        if problem is None:
            status.present.append(spec.name)
        else:
            status.damaged[spec.name] = problem
    return status


# ---------------------------------------------------------------------------------------------------------
# Fetching
# ---------------------------------------------------------------------------------------------------------


class _Bar:
    """The progress object pooch's HTTPDownloader drives (``total``, ``update``, ``reset``, ``close``): it
    forwards bytes to a :class:`FetchProgress` callback and stops the download when cancelled."""

    def __init__(self, emit: Callable[..., None], cancel) -> None:
        self.emit, self.cancel = emit, cancel
        self.total: Optional[int] = None
        self.done = 0

    def update(self, n: int) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise FetchCancelled()
        self.done = min(self.done + int(n), self.total) if self.total else self.done + int(n)
        self.emit(done=self.done, total=self.total or None)

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        pass


def _request_problem(exc: Exception) -> str:
    """A download error as a phrase that follows the URL."""
    import requests  # pooch's HTTP library, imported with pooch only when downloading

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"answered HTTP {exc.response.status_code} {exc.response.reason or ''}".rstrip()
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return "broke off before the end (truncated download)"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "could not be reached"
    text = " ".join(str(exc).split())[:160]
    return f"failed ({type(exc).__name__}{': ' + text if text else ''})"


def _download(url: str, folder: Path, bar: _Bar, timeout: float) -> Path:
    """Download ``url`` into ``folder`` with pooch; _Refused with the reason when that fails."""
    import pooch  # only downloads need pooch (and its requests)
    import requests

    if url.lower().startswith(("http://", "https://")):
        downloader = pooch.HTTPDownloader(progressbar=bar, chunk_size=CHUNK, timeout=timeout)
    else:  # ftp: pooch draws no custom progress there
        downloader = pooch.downloaders.choose_downloader(url, progressbar=False)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # pooch logs every download and the hash to use at INFO
    try:
        return Path(
            pooch.retrieve(url, known_hash=None, fname=url.rsplit("/", 1)[-1], path=str(folder), downloader=downloader)
        )
    except (requests.RequestException, ValueError) as exc:
        raise _Refused(_request_problem(exc)) from None
    except OSError as exc:
        raise _Refused(f"could not be downloaded ({exc.strerror or exc})") from None
    finally:
        logger.setLevel(level)


def _decompress(gz: Path, out: Path, spec: IdxFile, cancel) -> None:
    """gunzip ``gz`` into ``out`` (at most the file's size); _Refused if the stream is damaged."""
    written = 0
    try:
        with gzip.open(gz, "rb") as src, open(out, "wb") as dst:
            for block in iter(lambda: src.read(CHUNK), b""):
                if cancel is not None and cancel.is_set():
                    raise FetchCancelled()
                written += len(block)
                if written > spec.size:
                    raise _Refused(f"decompresses to more than the {spec.size:,} bytes of {spec.name}")
                dst.write(block)
    except EOFError:
        raise _Refused("is truncated (the gzip stream ends early)") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise _Refused(f"is not an intact gzip file ({' '.join(str(exc).split())[:80] or 'bad data'})") from None


def _install(gz: Path, spec: IdxFile, target: Path, md5: Optional[str], cancel) -> None:
    """Check the download ``gz``, decompress it next to it and move the result to ``target``."""
    if spec.sha256 is None:  # no known digest of the decompressed file: torchvision's md5 of the .gz
        if md5 is None:
            raise _Refused("cannot be verified (the installed torchvision lists no md5 for it)")
        h = hashlib.md5(usedforsecurity=False)
        with open(gz, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                h.update(block)
        if h.hexdigest() != md5:
            raise _Refused("does not match torchvision's md5 (a damaged or recompressed copy)")
    out = gz.with_name(spec.name)
    _decompress(gz, out, spec, cancel)
    problem = check_idx_file(out, spec)
    if problem is not None:
        raise _Refused("decompresses to a file that " + problem)
    if spec.sha256 and sha256_of(out) != spec.sha256:
        raise _Refused("decompresses to the wrong data (sha256 mismatch)")
    os.replace(out, target)


def _remove_stale_temps(folder: Path) -> None:
    now = time.time()
    for p in folder.glob(TEMP_PREFIX + "*"):
        try:
            if p.is_dir() and now - p.stat().st_mtime > STALE_TEMP_S:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def _fetch_file(
    spec: IdxFile, target: Path, urls: Sequence[str], md5: Optional[str], emit, cancel, timeout: float
) -> str:
    """Fetch one file from the first mirror that gives a good copy; returns its URL."""
    reasons = []
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=TEMP_PREFIX) as tmp:
        for mirror in urls:
            url = _url(mirror, spec.gz_name)
            emit(stage="download", url=url)
            bar = _Bar(lambda _url=url, **kw: emit(stage="download", url=_url, **kw), cancel)
            try:
                gz = _download(url, Path(tmp), bar, timeout)
                emit(stage="verify", url=url)
                _install(gz, spec, target, md5, cancel)
                return url
            except _Refused as exc:
                reasons.append(f"{mirror} {exc}")  # the file's name is said once, before the reasons
                emit(stage="failed", url=url, note=str(exc))
            for leftover in Path(tmp).iterdir():
                leftover.unlink()
    others = f" (and {len(reasons) - 1} other mirror(s) failed)" if len(reasons) > 1 else ""
    raise FetchError(
        f"could not fetch {spec.gz_name}: the copy at {reasons[0]}{others}; nothing was kept, and a rerun resumes"
    )


def fetch_dataset(
    name: str,
    data_dir: PathLike | None = None,
    mirrors: Sequence[str] = (),
    progress: Optional[ProgressFn] = None,
    cancel=None,
    timeout: float = 60.0,
) -> FetchResult:
    """Fetch dataset ``name`` (one of :data:`FETCHABLE`) into ``<data root>/<class>/raw``.

    ``data_dir``: the data root (default: $RFEXPLORER_DATA, else the per-user data folder); ``mirrors``: URL
    prefixes tried in order for each file (default: $RFEXPLORER_MIRRORS, else torchvision's); ``progress``:
    called with a :class:`FetchProgress` for every chunk and stage (from the calling thread); ``cancel``: an
    object with ``is_set()`` (e.g. :class:`engine.core.progress.CancelToken`), checked between chunks.

    Raises :class:`FetchError` (one sentence) when a file cannot be fetched and verified from any mirror or the
    folder cannot be written, :class:`FetchCancelled` when cancelled. Files already in place and intact are
    kept; a damaged one is fetched again.
    """
    _check_name(name)
    urls = resolve_mirrors(name, mirrors)
    folder = raw_folder(name, data_dir)
    md5s = torchvision_md5(name) if any(spec.sha256 is None for spec in FILES[name]) else {}
    created = [p for p in (folder.parent.parent, folder.parent, folder) if not p.exists()]
    result = FetchResult(name, folder)
    finished = False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(folder)
        _fetch_all(result, urls, md5s, progress, cancel, timeout)
        finished = True
    except OSError as exc:
        where = exc.filename or folder
        raise FetchError(f"cannot write the dataset into {where} ({exc.strerror or exc})") from None
    finally:
        if not finished:  # folders this fetch made and left empty go again
            for p in reversed(created):
                try:
                    p.rmdir()
                except OSError:
                    break
    return result


def _fetch_all(
    result: FetchResult, urls: Sequence[str], md5s: dict, progress: Optional[ProgressFn], cancel, timeout: float
) -> None:
    files = FILES[result.dataset]
    for i, spec in enumerate(files):

        def emit(stage: str, _i=i, _spec=spec, **kw) -> None:
            if progress is not None:
                progress(FetchProgress(result.dataset, _spec.name, _i, len(files), stage, **kw))

        if cancel is not None and cancel.is_set():
            raise FetchCancelled()
        target = result.folder / spec.name
        if target.exists():
            if target.is_file() and problem_in_place(target, spec) is None:
                result.kept.append(spec.name)
                emit("kept")
                continue
            target.unlink()  # damaged or truncated: fetched again
        result.urls.append(_fetch_file(spec, target, urls, md5s.get(spec.gz_name), emit, cancel, timeout))
        result.fetched.append(spec.name)
        emit("done")
