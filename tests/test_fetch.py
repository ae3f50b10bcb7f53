"""rfexplorer-cli data fetch / data list, engine.data.fetch and the app's "Get full MNIST…" action.

Every download comes from an http.server the test starts on 127.0.0.1, serving gzip copies (made here) of the
read-only MNIST files in ../shared/data; a guard fails any request to another host, and torchvision's own
mirror list is never consulted.
"""
import filecmp
import functools
import gzip
import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from engine import cli, data

from engine.data import fetch

SHARED_RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "MNIST" / "raw"
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
ERROR = "rfexplorer-cli: error: "

pytestmark = pytest.mark.skipif(not (SHARED_RAW / NAMES[0]).is_file(), reason="needs ../shared/data/MNIST")


# ---------------------------------------------------------------------------------------------------------
# A local mirror
# ---------------------------------------------------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the site folder; records every path asked for; ``server.cut`` maps a file name to the number of
    body bytes to send before hanging up (the Content-Length still announces the whole file)."""

    def do_GET(self):  # noqa: N802
        self.server.requests.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        if name in self.server.cut:
            body = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:self.server.cut[name]])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def gz_dir(tmp_path_factory):
    """gzip -1 copies of the four MNIST files (made once per module)."""
    folder = tmp_path_factory.mktemp("gz")
    for name in NAMES:
        (folder / f"{name}.gz").write_bytes(gzip.compress((SHARED_RAW / name).read_bytes(), compresslevel=1,
                                                          mtime=0))
    return folder


@pytest.fixture
def site(tmp_path, gz_dir):
    """(folder, url, server): a local mirror of the gz copies; edit the folder to change what it serves."""
    folder = tmp_path / "site"
    shutil.copytree(gz_dir, folder)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
    server.requests, server.cut = [], {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/", server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def local_only(monkeypatch):
    """No mirror but the ones a test names, and no request to any host but 127.0.0.1."""
    import requests.sessions

    monkeypatch.delenv(fetch.MIRRORS_ENV_VAR, raising=False)

    def no_defaults(name):
        raise AssertionError("a test asked for torchvision's mirrors")

    monkeypatch.setattr(fetch, "default_mirrors", no_defaults)
    original = requests.sessions.Session.request

    def request(self, method, url, *args, **kwargs):
        assert url.startswith("http://127.0.0.1:"), f"a test tried to download from {url}"
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.sessions.Session, "request", request)


def _raw(root: Path, cls: str = "MNIST") -> Path:
    return root / cls / "raw"


def _preplace(root: Path, *names: str, cls: str = "MNIST") -> None:
    """Put good copies of some files in place (so a test downloads only the others)."""
    raw = _raw(root, cls)
    raw.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(SHARED_RAW / name, raw / name)


def _run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(ERROR)]
    assert len(lines) == 1, err
    assert lines[0].endswith("."), lines[0]
    return lines[0][len(ERROR):]


def _only(raw: Path, *names: str) -> None:
    """The raw folder holds exactly these files: no partial file, no temporary folder, no .gz."""
    assert sorted(p.name for p in raw.iterdir()) == sorted(names)


# ---------------------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------------------

def test_fetch_mnist_then_train_and_list(site, tmp_path, capsys):
    folder, url, server = site
    root = tmp_path / "data"
    rc, out, err = _run(capsys, "data", "fetch", "mnist", "--mirror", url, "--data-dir", str(root), "--json")
    assert rc == 0, err
    doc = json.loads(out.splitlines()[-1])
    assert doc["fetched"] == list(NAMES) and doc["kept"] == [] and doc["folder"] == str(_raw(root))
    _only(_raw(root), *NAMES)
    for name in NAMES:
        assert filecmp.cmp(_raw(root) / name, SHARED_RAW / name, shallow=False), name
    assert "[4/4] t10k-labels-idx1-ubyte: verified" in err  # progress (plain lines: stderr is not a terminal)

    ds = data.load_dataset("mnist", root)  # what torchvision's MNIST(download=False) reads
    assert (len(ds.train_y), len(ds.test_y)) == (60000, 10000)
    rc, out, err = _run(capsys, "train", "--dataset", "mnist", "--data-dir", str(root), "--epochs", "1",
                        "--model", "dense", "--threads", "1", "--json")
    assert rc == 0, err
    result = json.loads(out.splitlines()[-1])
    assert result["dataset"] == "mnist" and result["epochs_completed"] == 1

    rc, out, _ = _run(capsys, "data", "list", "--data-dir", str(root), "--json")
    rows = {r["name"]: r for r in json.loads(out.splitlines()[-1])["datasets"]}
    assert rc == 0 and rows["mnist"]["complete"] and rows["mnist"]["status"] == "present"
    assert not rows["kmnist"]["complete"] and "data fetch kmnist" in out

    asked = len(server.requests)  # a rerun finds everything in place and downloads nothing
    rc, out, err = _run(capsys, "data", "fetch", "mnist", "--mirror", url, "--data-dir", str(root), "--json")
    assert rc == 0 and json.loads(out.splitlines()[-1])["kept"] == list(NAMES)
    assert len(server.requests) == asked


def test_a_mirror_that_recompresses_still_verifies(site, tmp_path, capsys):
    folder, url, _ = site
    for name in NAMES:  # other compression levels and header times: different .gz bytes, same content
        gz = folder / f"{name}.gz"
        before = gz.read_bytes()
        gz.write_bytes(gzip.compress((SHARED_RAW / name).read_bytes(), compresslevel=9 if "labels" in name else 3,
                                     mtime=1234567))
        assert gz.read_bytes() != before
    root = tmp_path / "data"
    rc, _, err = _run(capsys, "data", "fetch", "mnist", "--mirror", url, "--data-dir", str(root), "--quiet")
    assert rc == 0, err
    for name in NAMES:
        assert filecmp.cmp(_raw(root) / name, SHARED_RAW / name, shallow=False)


def _truncate(folder, server, name):
    gz = folder / f"{name}.gz"
    gz.write_bytes(gz.read_bytes()[:len(gz.read_bytes()) // 2])


def _wrong_content(folder, server, name):
    raw = bytearray((SHARED_RAW / name).read_bytes())
    raw[100] = (raw[100] + 1) % 10  # one label changed: a valid IDX file, the wrong data
    (folder / f"{name}.gz").write_bytes(gzip.compress(bytes(raw), compresslevel=6))


def _wrong_size(folder, server, name):
    (folder / f"{name}.gz").write_bytes(gzip.compress((SHARED_RAW / name).read_bytes()[:-8]))


def _not_gzip(folder, server, name):
    (folder / f"{name}.gz").write_bytes(b"<html>moved</html>\n" * 100)


def _broken_connection(folder, server, name):
    server.cut[f"{name}.gz"] = 1000


@pytest.mark.parametrize("damage, phrase", [
    (_truncate, "is truncated"),
    (_wrong_content, "sha256 mismatch"),
    (_wrong_size, "bytes instead of the 60,008"),
    (_not_gzip, "is not an intact gzip file"),
    (_broken_connection, "broke off before the end"),
])
def test_a_damaged_download_is_refused_and_not_left_in_place(site, tmp_path, capsys, damage, phrase):
    folder, url, server = site
    root = tmp_path / "data"
    _preplace(root, NAMES[0])  # the first file is in place; the second one is damaged on the mirror
    damage(folder, server, NAMES[1])
    rc, out, err = _run(capsys, "data", "fetch", "mnist", "--mirror", url, "--data-dir", str(root))
    assert rc == 2
    message = _one_error(err)
    assert phrase in message and NAMES[1] in message and "a rerun resumes" in message and len(message) <= 200
    _only(_raw(root), NAMES[0])


def test_a_rerun_after_the_mirror_is_fixed_resumes(site, tmp_path, capsys):
    folder, url, server = site
    root = tmp_path / "data"
    good = (folder / f"{NAMES[2]}.gz").read_bytes()
    _truncate(folder, server, NAMES[2])
    rc, _, err = _run(capsys, "data", "fetch", "mnist", "--mirror", url, "--data-dir", str(root), "--quiet")
    assert rc == 2 and "is truncated" in _one_error(err)
    _only(_raw(root), *NAMES[:2])  # the files before it are verified and kept
    (folder / f"{NAMES[2]}.gz").write_bytes(good)
    rc, out, err = _run(capsys, "data", "fetch", "mnist", "--mirror", url, "--data-dir", str(root), "--json")
    assert rc == 0, err
    doc = json.loads(out.splitlines()[-1])
    assert doc["kept"] == list(NAMES[:2]) and doc["fetched"] == list(NAMES[2:])
    _only(_raw(root), *NAMES)


def test_a_damaged_file_in_place_is_fetched_again(site, tmp_path, capsys):
    _, url, _ = site
    root = tmp_path / "data"
    _preplace(root, NAMES[0], NAMES[2], NAMES[3])
    (_raw(root) / NAMES[1]).write_bytes((SHARED_RAW / NAMES[1]).read_bytes()[:5000])
    rc, out, err = _run(capsys, "data", "fetch", "mnist", "--mirror", url, "--data-dir", str(root), "--json")
    assert rc == 0, err
    assert json.loads(out.splitlines()[-1])["fetched"] == [NAMES[1]]
    assert filecmp.cmp(_raw(root) / NAMES[1], SHARED_RAW / NAMES[1], shallow=False)


def test_mirrors_from_the_environment_are_tried_in_order(site, tmp_path, capsys, monkeypatch):
    _, url, server = site
    root = tmp_path / "data"
    _preplace(root, NAMES[0], NAMES[2], NAMES[3])
    monkeypatch.setenv(fetch.MIRRORS_ENV_VAR, f"{url}nowhere/, {url}")
    rc, out, err = _run(capsys, "data", "fetch", "mnist", "--data-dir", str(root), "--json")
    assert rc == 0, err
    assert server.requests == [f"/nowhere/{NAMES[1]}.gz", f"/{NAMES[1]}.gz"]
    assert "answered HTTP 404" in err
    assert json.loads(out.splitlines()[-1])["urls"] == [f"{url}{NAMES[1]}.gz"]


def test_every_mirror_failing_is_one_sentence(site, tmp_path, capsys):
    _, url, _ = site
    root = tmp_path / "data"
    rc, _, err = _run(capsys, "data", "fetch", "mnist", "--mirror", f"{url}a/", "--mirror", f"{url}b",
                      "--data-dir", str(root))
    assert rc == 2
    message = _one_error(err)
    assert "answered HTTP 404" in message and "1 other mirror(s) failed" in message
    assert not root.exists()  # the folders it made are removed again


@pytest.mark.parametrize("argv, phrase", [
    (["data", "fetch", "mnist", "--mirror", "file:///tmp/mnist/"], "is not a URL starting with"),
    (["data", "fetch", "cifar"], "invalid choice"),
    (["data"], "data fetch NAME"),
])
def test_wrong_input_exits_2(tmp_path, capsys, argv, phrase):
    rc, _, err = _run(capsys, *argv, *(["--data-dir", str(tmp_path)] if len(argv) > 2 else []))
    assert rc == 2 and phrase in _one_error(err)
    assert not any(tmp_path.iterdir())


def test_missing_dataset_says_how_to_fetch_it(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="rfexplorer-cli data fetch kmnist"):
        data.load_dataset("kmnist", tmp_path)


def test_default_folder_follows_xdg_data_home(monkeypatch, tmp_path):
    import sys

    if sys.platform != "linux":
        pytest.skip("XDG_DATA_HOME applies on Linux")
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert data.resolve_data_root() == tmp_path / "rfexplorer" / "data"
    assert fetch.raw_folder("fashion-mnist") == tmp_path / "rfexplorer" / "data" / "FashionMNIST" / "raw"


# ---------------------------------------------------------------------------------------------------------
# The engine API
# ---------------------------------------------------------------------------------------------------------

def test_progress_reports_and_cancel_keeps_nothing_partial(site, tmp_path):
    from engine.core.progress import CancelToken

    _, url, _ = site
    root = tmp_path / "data"
    _preplace(root, NAMES[0])
    token, seen = CancelToken(), []

    def cancel_on_first_bytes(p):
        seen.append(p)
        if p.stage == "download" and p.done > 0:
            token.set()

    with pytest.raises(fetch.FetchCancelled):
        fetch.fetch_dataset("mnist", root, [url], progress=cancel_on_first_bytes, cancel=token)
    _only(_raw(root), NAMES[0])
    assert seen[0].stage == "kept" and seen[0].fraction == pytest.approx(0.25)

    seen.clear()
    result = fetch.fetch_dataset("mnist", root, [url], progress=seen.append)
    assert result.kept == [NAMES[0]] and result.fetched == list(NAMES[1:])
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {p.stage for p in seen} == {"kept", "download", "verify", "done"}
    assert any(p.stage == "download" and p.total and p.done == p.total for p in seen)


def test_files_without_a_known_sha256_are_checked_by_torchvision_md5(site, tmp_path, monkeypatch):
    """KMNIST (and Fashion-MNIST's images) have no known sha256 of the decompressed files: the .gz must match
    the md5 torchvision lists. Here MNIST's copies stand in for KMNIST's, with their md5 as torchvision's."""
    folder, url, _ = site
    md5 = {f"{n}.gz": hashlib.md5((folder / f"{n}.gz").read_bytes()).hexdigest() for n in NAMES}
    monkeypatch.setattr(fetch, "torchvision_md5", lambda name: md5)
    root = tmp_path / "data"
    _preplace(root, *NAMES[1:], cls="KMNIST")
    result = fetch.fetch_dataset("kmnist", root, [url])
    assert result.fetched == [NAMES[0]] and result.kept == list(NAMES[1:])
    assert data.load_dataset("kmnist", root).train_x.shape == (60000, 784)

    (_raw(root, "KMNIST") / NAMES[3]).unlink()  # a recompressed copy of a file checked by md5 is refused
    (folder / f"{NAMES[3]}.gz").write_bytes(gzip.compress((SHARED_RAW / NAMES[3]).read_bytes(), compresslevel=9))
    with pytest.raises(fetch.FetchError, match="does not match torchvision's md5"):
        fetch.fetch_dataset("kmnist", root, [url])
    _only(_raw(root, "KMNIST"), *NAMES[:3])


def test_idx_checks(tmp_path):
    spec = fetch.FILES["mnist"][1]
    good = (SHARED_RAW / spec.name).read_bytes()
    path = tmp_path / spec.name
    path.write_bytes(good)
    assert fetch.check_idx_file(path, spec) is None
    path.write_bytes(b"\x00\x00\x08\x03" + good[4:])
    assert "magic number" in fetch.check_idx_file(path, spec)
    path.write_bytes(good[:4] + (59999).to_bytes(4, "big") + good[8:])
    assert "shape (59999,)" in fetch.check_idx_file(path, spec)
    path.write_bytes(good[:-1] + b"\x0a")
    assert "labels outside" in fetch.check_idx_file(path, spec)


# ---------------------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------------------

def test_app_gets_full_mnist_in_the_background(window, qtbot, site, tmp_path, monkeypatch, dialogs):
    _, url, _ = site
    monkeypatch.setenv(fetch.MIRRORS_ENV_VAR, url)
    root = tmp_path / "data"
    window.controls.set_data_dir(str(root))
    actions = window.fetches.actions
    window.fetches.sync()
    assert set(actions) == {"mnist", "fashion-mnist", "kmnist"}
    assert actions["mnist"].isVisible() and actions["mnist"].text() == "Get full MNIST…"

    with qtbot.waitSignal(window.fetches.finished, timeout=120_000) as done:
        actions["mnist"].trigger()
        assert window.fetches.busy and window.fetches.dialog is not None  # the GUI thread is not blocked
        assert not actions["kmnist"].isEnabled()
    assert done.args == ["mnist", "ok"]
    assert window.fetches.dialog is None and not dialogs
    assert "mnist" in window.controls.available
    window.fetches.sync()
    assert not actions["mnist"].isVisible() and actions["kmnist"].isVisible()
    qtbot.waitUntil(lambda: window.datasets.info is not None and window.datasets.info.key == "mnist",
                    timeout=120_000)
    assert window.datasets.info.n_train == 60000


def test_app_fetch_cancel_and_failure(window, qtbot, site, tmp_path, monkeypatch, dialogs):
    _, url, _ = site
    monkeypatch.setenv(fetch.MIRRORS_ENV_VAR, url)
    root = tmp_path / "data"
    window.controls.set_data_dir(str(root))
    with qtbot.waitSignal(window.fetches.finished, timeout=60_000) as done:
        assert window.fetches.fetch("mnist")
        from PySide6.QtWidgets import QPushButton

        window.fetches.dialog.findChild(QPushButton).click()  # the dialog's Cancel button
    assert done.args == ["mnist", "cancelled"]
    assert not _raw(root).exists()
    assert "mnist" not in window.controls.available and "cancelled" in window.status_text()

    monkeypatch.setenv(fetch.MIRRORS_ENV_VAR, f"{url}nowhere/")
    with qtbot.waitSignal(window.fetches.finished, timeout=60_000) as done:
        window.fetches.fetch("kmnist")
    assert done.args == ["kmnist", "failed"]
    assert dialogs.kinds() == ["warning"] and "answered HTTP 404" in dialogs[0][2]
