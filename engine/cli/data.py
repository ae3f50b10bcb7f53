"""``data fetch NAME`` and ``data list``: get the full MNIST, Fashion-MNIST or KMNIST (engine.data.fetch) and see which
datasets are present, and where. Ctrl-C discards the file in progress and keeps the finished ones."""

from __future__ import annotations

import json
import os
import sys

from engine.cli.common import CliError, Interrupted, Parser, cancel_on_sigint
from engine.core.progress import CancelToken
from engine.core.progress_bar import stderr_is_terminal
from engine.data.dataset import TORCHVISION_DATASETS, PathLike
from engine.data.fetch import (
    FETCHABLE,
    FetchCancelled,
    FetchError,
    FetchProgress,
    dataset_status,
    fetch_dataset,
    raw_folder,
    resolve_mirrors,
)
from engine.data.named import DATA_ENV_VAR, EMBEDDED_DATASETS, embedded_path, resolve_data_root


def add_parser(sub) -> None:
    p = sub.add_parser(
        "data",
        help="get the full MNIST, Fashion-MNIST or KMNIST, and see which datasets are present",
        description="'data fetch NAME' downloads and verifies a dataset's four files into the data "
        "folder (torchvision's layout); 'data list' shows which datasets are present and "
        "where.",
    )
    actions = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=Parser)
    f = actions.add_parser(
        "fetch",
        help="download a dataset into the data folder (resumes; verifies every file)",
        description="Download NAME's four IDX files, check their size, header and checksum, "
        "and put them in DIR/<MNIST|FashionMNIST|KMNIST>/raw.",
    )
    f.add_argument(
        "name", choices=tuple(TORCHVISION_DATASETS), metavar="NAME", help=f"one of {', '.join(TORCHVISION_DATASETS)}"
    )
    f.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="URL",
        help="a URL prefix to download from, tried in order (repeatable; default: $RFEXPLORER_MIRRORS, "
        "space or comma separated, else the mirrors torchvision lists)",
    )
    f.add_argument("--json", action="store_true", help="make the last line of stdout one JSON object")
    f.add_argument("--quiet", action="store_true", help="no progress on stderr")
    w = actions.add_parser(
        "list",
        aliases=["where"],
        help="which datasets are present, and where",
        description="The data folder and, for every named dataset, whether it is present.",
    )
    w.add_argument("--verify", action="store_true", help="also check the files' checksums (slower)")
    w.add_argument("--json", action="store_true", help="make the last line of stdout one JSON object")
    for q in (f, w):
        q.add_argument(
            "--data-dir",
            default=None,
            metavar="DIR",
            help="the data folder (default: $RFEXPLORER_DATA, else the per-user data folder)",
        )


def cmd_data(args) -> int:
    if not getattr(args, "data_command", None):
        raise CliError("say what to do: 'data fetch NAME' or 'data list' (see rfexplorer-cli data --help)")
    token = CancelToken()
    try:
        with cancel_on_sigint(token):  # Ctrl-C: the file in progress is discarded, finished ones are kept
            return run_data_command(args, cancel=token)
    except FetchError as exc:
        raise CliError(str(exc)) from None
    except FetchCancelled:
        raise Interrupted from None


class FetchBar:
    """A fetch's progress on stderr: a tqdm byte bar per file on a terminal, else one plain line per step."""

    def __init__(self, quiet: bool = False, stream=None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.tty = not quiet and stderr_is_terminal(self.stream)
        self.bar = None
        self.key: tuple = ()

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def __call__(self, p: FetchProgress) -> None:
        if self.quiet:
            return
        tag = f"[{p.index + 1}/{p.n_files}] {p.file}"
        if p.stage == "download":
            if (p.index, p.url) != self.key:
                self.close()
                self.key = (p.index, p.url)
                if self.tty:
                    from tqdm import tqdm  # only for a terminal; plain lines need no tqdm

                    self.bar = tqdm(
                        total=p.total,
                        desc=tag,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        file=self.stream,
                        dynamic_ncols=True,
                        leave=True,
                    )
                else:
                    self._line(f"{tag}: downloading {p.url}")
            if self.bar is not None:
                if p.total and self.bar.total != p.total:
                    self.bar.total = p.total
                self.bar.update(max(0, p.done - self.bar.n))
        elif p.stage == "failed":
            self._line(f"{tag}: {p.url} {p.note}")
            self.close()
        elif p.stage == "kept":
            self._line(f"{tag}: already in place and intact")
        elif p.stage == "done":
            self.close()
            self._line(f"{tag}: verified")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.key = ()


def _root_origin(data_dir: PathLike | None) -> str:
    if data_dir:
        return "--data-dir"
    if os.environ.get(DATA_ENV_VAR):
        return f"${DATA_ENV_VAR}"
    return "the per-user default; change it with --data-dir or $" + DATA_ENV_VAR


def _list_rows(data_dir: PathLike | None, verify: bool) -> list[dict]:
    rows = []
    for name in FETCHABLE:
        st = dataset_status(name, data_dir, verify=verify)
        rows.append(
            {
                "name": name,
                "status": st.describe(),
                "complete": st.complete,
                "path": str(st.folder),
                "missing": st.missing,
                "damaged": st.damaged,
            }
        )
    for name in EMBEDDED_DATASETS:
        path = embedded_path(name)
        rows.append(
            {
                "name": name,
                "status": "embedded" if path.is_file() else "missing",
                "complete": path.is_file(),
                "path": str(path),
                "missing": [] if path.is_file() else [path.name],
                "damaged": {},
            }
        )
    return rows


def run_data_command(args, cancel=None) -> int:
    """``rfexplorer-cli data fetch NAME`` / ``data list`` (alias ``where``); returns the exit status (0).
    Raises FetchError (exit 2) and FetchCancelled (exit 130) for cmd_data to report."""
    root = resolve_data_root(args.data_dir)
    if args.data_command == "fetch":
        bar = FetchBar(quiet=args.quiet)
        urls = resolve_mirrors(args.name, args.mirror)
        print(
            f"fetching {args.name} into {raw_folder(args.name, args.data_dir)} ({_root_origin(args.data_dir)}) "
            f"from {', '.join(urls)}",
            file=sys.stderr,
            flush=True,
        )
        try:
            result = fetch_dataset(args.name, args.data_dir, urls, progress=bar, cancel=cancel)
        finally:
            bar.close()
        fetched = f"fetched {len(result.fetched)} file(s)" + (
            f", kept {len(result.kept)} already there" if result.kept else ""
        )
        print(
            f"{args.name}: complete in {result.folder} ({fetched}); use it with --dataset {args.name}"
            + (f" --data-dir {root}" if args.data_dir else ""),
            flush=True,
        )
        if args.json:
            print(json.dumps({**result.to_dict(), "root": str(root)}), flush=True)
        return 0
    rows = _list_rows(args.data_dir, args.verify)
    print(f"data folder: {root} ({_root_origin(args.data_dir)})")
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        hint = (
            ""
            if r["complete"] or r["name"] not in FETCHABLE
            else f"  (get it: rfexplorer-cli data fetch {r['name']}"
            + (f" --data-dir {root})" if args.data_dir else ")")
        )
        print(f"{r['name']:<{width}}  {r['status']:<10}  {r['path']}{hint}")
    if args.json:
        print(json.dumps({"root": str(root), "datasets": rows}))
    sys.stdout.flush()
    return 0
