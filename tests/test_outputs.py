"""Output files: never written through a planted symbolic link, temporary files always removed (and stale ones
cleaned), a topology's JSON and CSV written as a pair, output paths checked before training, SIGTERM exits 143."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine import cli

from engine.core import outputs
from engine.core.files import (TEMP_SUFFIX, UnsafeOutputError, atomic_write_files, atomic_write_text,
                          check_output_file, check_output_folder, clean_stale_temps)
from engine.experiments.sweep.log import ROWS_FILE, RowLog, read_rows_log

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
if not PYTHON.exists():  # pragma: no cover - other checkouts
    PYTHON = Path(sys.executable)
OLD_NS = 1_000_000_000 * 1_600_000_000  # 2020-09-13, an mtime no write of ours can produce


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs torch on one thread (see conftest.one_torch_thread)."""


def temp_files(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", TEMP_SUFFIX)))


def planted_target(tmp_path: Path) -> tuple[Path, bytes, int]:
    """A file outside the output folder, its bytes and mtime (ns): a last line without its newline, which the
    old row log 'repaired' by truncating it."""
    target = tmp_path / "elsewhere" / "precious.txt"
    target.parent.mkdir()
    data = b"precious line 1\nprecious line 2 without a newline"
    target.write_bytes(data)
    os.utime(target, ns=(OLD_NS, OLD_NS))
    return target, data, target.stat().st_mtime_ns


def untouched(target: Path, data: bytes, mtime_ns: int) -> bool:
    return target.read_bytes() == data and target.stat().st_mtime_ns == mtime_ns


# --- symbolic links -------------------------------------------------------------------------------------------

def test_sweep_refuses_a_symlinked_rows_log_and_leaves_its_target_untouched(tmp_path, capsys, monkeypatch):
    import engine.experiments.sweep.backend

    target, data, mtime = planted_target(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / ROWS_FILE).symlink_to(target)
    runs: list = []
    monkeypatch.setattr(engine.experiments.sweep.backend, "train_row",
                        lambda *a, **k: runs.append(a) or pytest.fail("a run started"))
    code = cli.main(["sweep", "--quick", "--models", "rigl", "--ks", "1", "--seeds", "0", "--epochs", "1",
                     "--workers", "1", "--out", str(out), "--json"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{out / ROWS_FILE} is a symbolic link; refusing to" in err and "Traceback" not in err
    assert untouched(target, data, mtime) and runs == []
    assert sorted(p.name for p in out.iterdir()) == [ROWS_FILE]  # nothing else written either


def test_row_log_reader_and_writer_refuse_a_symlink(tmp_path):
    target, data, mtime = planted_target(tmp_path)
    link = tmp_path / ROWS_FILE
    link.symlink_to(target)
    with pytest.raises(UnsafeOutputError, match="is a symbolic link; refusing to read through it"):
        read_rows_log(link)
    with pytest.raises(UnsafeOutputError, match="is a symbolic link; refusing to write through it"):
        RowLog(link)
    assert untouched(target, data, mtime)
    plain = tmp_path / "real.jsonl"  # a regular file still works: a cut last line is cut off, rows appended
    plain.write_bytes(b'{"a": 1}\n{"b"')
    with RowLog(plain) as log:
        log.append({"c": 2})
    assert read_rows_log(plain) == ([{"a": 1}, {"c": 2}], [])


def test_atomic_writes_refuse_a_symlinked_destination(tmp_path):
    target, data, mtime = planted_target(tmp_path)
    link = tmp_path / "sweep.json"
    link.symlink_to(target)
    with pytest.raises(UnsafeOutputError, match="sweep.json is a symbolic link; refusing to write through it"):
        atomic_write_text(link, "{}")
    assert untouched(target, data, mtime) and link.is_symlink() and temp_files(tmp_path) == []


def test_a_planted_link_at_the_temporary_name_is_never_written_through(tmp_path, monkeypatch):
    target, data, mtime = planted_target(tmp_path)
    tokens = iter(["deadbeef", "0badf00d"])
    monkeypatch.setattr(outputs.secrets, "token_hex", lambda n: next(tokens))
    first = tmp_path / f".out.txt.{outputs._host_tag()}-{os.getpid()}-deadbeef{TEMP_SUFFIX}"
    first.symlink_to(target)  # someone guessed the first name
    atomic_write_text(tmp_path / "out.txt", "new")
    assert (tmp_path / "out.txt").read_text() == "new" and untouched(target, data, mtime)
    assert first.is_symlink()  # the planted link itself is not ours to remove (it is only fresh)


# --- temporary files --------------------------------------------------------------------------------------------

def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_are_cleaned_at_the_next_write_and_nothing_else(tmp_path):
    host = outputs._host_tag()
    other_host = "0" * 8 if host != "0" * 8 else "1" * 8
    live_pid = os.getppid()  # alive: the process that runs the tests' parent

    def temp(name: str, old: bool = False) -> Path:
        p = tmp_path / name
        p.write_text("partial")
        if old:
            os.utime(p, (time.time() - 120, time.time() - 120))
        return p

    killed = temp(f".sweep.csv.{host}-{dead_pid()}-0123abcd{TEMP_SUFFIX}")  # its process is gone
    old = temp(f".sweep.json.{host}-{live_pid}-89abcdef{TEMP_SUFFIX}", old=True)  # not written for 2 minutes
    old_remote = temp(f".a.json.{other_host}-{live_pid}-00000001{TEMP_SUFFIX}", old=True)
    concurrent = temp(f".sweep.md.{host}-{live_pid}-0000beef{TEMP_SUFFIX}")  # a live writer, just now
    remote = temp(f".b.json.{other_host}-{dead_pid()}-00000002{TEMP_SUFFIX}")  # another machine's pid space
    foreign = [temp("notes.tmp", old=True), temp(".sweep.json.abc123.tmp", old=True),
               temp(f"visible.{host}-1-00000003{TEMP_SUFFIX}", old=True)]
    atomic_write_text(tmp_path / "sweep.json", "{}")
    left = set(tmp_path.iterdir())
    assert not {killed, old, old_remote} & left
    assert {concurrent, remote, *foreign, tmp_path / "sweep.json"} == left
    assert clean_stale_temps(tmp_path) == []


def test_a_failed_or_interrupted_write_removes_its_temporary_file(tmp_path, monkeypatch):
    dest = tmp_path / "doc.json"
    dest.write_text("previous")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(outputs.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(dest, "new")
    monkeypatch.undo()
    assert dest.read_text() == "previous" and temp_files(tmp_path) == [] and outputs._LIVE_TEMPS == set()


# --- pairs: both or neither -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(mini):
    from engine.config.run_config import RunConfig
    from engine.training.loop import run_training

    return run_training(RunConfig(model="rf", resonators_per_chain=5, epochs=1), dataset=mini)


def replace_failing_at(monkeypatch, n: int, *, after: bool = False, exc=OSError(28, "No space left on device")):
    """os.replace raises on its n-th call (1-based): before renaming, or (after=True) right after it."""
    real = os.replace
    calls: list = []

    def replace(src, dst, *a, **k):
        calls.append(Path(dst).name)
        if len(calls) == n and not after:
            raise exc
        real(src, dst, *a, **k)
        if len(calls) == n:
            raise exc
    monkeypatch.setattr(outputs.os, "replace", replace)
    return calls


@pytest.mark.parametrize("n, after", [(1, False), (2, False), (1, True)])
@pytest.mark.parametrize("existing", [True, False])
def test_topology_json_and_csv_are_written_both_or_neither(tmp_path, monkeypatch, trained, n, after, existing):
    from engine.io.topology import export_result

    path, csv = tmp_path / "net.json", tmp_path / "net.csv"
    if existing:
        export_result(trained, path)
        before = (path.read_bytes(), csv.read_bytes())
    exc = KeyboardInterrupt() if after else OSError(28, "No space left on device")
    calls = replace_failing_at(monkeypatch, n, after=after, exc=exc)
    with pytest.raises(type(exc)):
        export_result(trained, path)
    monkeypatch.undo()
    assert calls[0] == "net.csv" and (n < 2 or calls[1] == "net.json")  # the CSV first, the JSON (commit) last
    if existing:
        assert (path.read_bytes(), csv.read_bytes()) == before
    else:
        assert not path.exists() and not csv.exists()
    assert temp_files(tmp_path) == []
    json_out, csv_out = export_result(trained, path)  # and a later export writes the new pair
    assert (json_out, csv_out) == (path, csv) and path.exists() and csv.exists()


def test_a_group_write_restores_every_file_renamed_before_the_failure(tmp_path, monkeypatch):
    names = ["a.csv", "b.md", "c.json"]
    atomic_write_files([(tmp_path / n, b"old " + n.encode()) for n in names[:2]])  # c.json absent before
    replace_failing_at(monkeypatch, 3)
    with pytest.raises(OSError, match="No space"):
        atomic_write_files([(tmp_path / n, b"new") for n in names])
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.md"]
    assert [(tmp_path / n).read_bytes() for n in names[:2]] == [b"old a.csv", b"old b.md"]


SIGTERM_DURING_WRITE = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from engine import cli
    from engine.core import outputs

    folder, when = Path(sys.argv[1]), sys.argv[2]
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        if when == "write":
            os.kill(os.getpid(), signal.SIGTERM)
        real_fsync(fd)

    def replace(src, dst):
        real_replace(src, dst)
        if when == "rename" and Path(dst).suffix == ".csv":
            os.kill(os.getpid(), signal.SIGTERM)

    def command(args):
        outputs.os.fsync, outputs.os.replace = fsync, replace
        outputs.atomic_write_files([(folder / "net.csv", b"new csv"), (folder / "net.json", b"new json")])
        print("not stopped", flush=True)
        return 0

    cli.COMMANDS["models"] = command
    sys.exit(cli.main(["models"]))
""")


@pytest.mark.parametrize("when", ["write", "rename"])
def test_sigterm_during_a_write_exits_143_with_no_temporary_file_and_a_whole_pair(tmp_path, when):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([str(PYTHON), "-c", SIGTERM_DURING_WRITE, str(tmp_path), when], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert "terminated" in proc.stderr and "Traceback" not in proc.stderr and "not stopped" not in proc.stdout
    assert temp_files(tmp_path) == []
    files = sorted(p.name for p in tmp_path.iterdir())
    # while the temporary files are written: neither; between the renames SIGTERM waits: both, whole
    assert files == ([] if when == "write" else ["net.csv", "net.json"])


# --- checks before training -------------------------------------------------------------------------------------

@pytest.fixture
def no_training(monkeypatch):
    import engine.training.loop

    calls: list = []

    def run_training(*args, **kwargs):
        calls.append(args)
        pytest.fail("training started although the export cannot be written")
    monkeypatch.setattr(engine.training.loop, "run_training", run_training)
    return calls


@pytest.mark.parametrize("where, expected", [
    ("missing/net.json", "does not exist"),
    ("a-file/net.json", "is a file"),
    ("x" * 300 + ".json", "longer than"),
    ("link.json", "is a symbolic link"),
    ("folder/", "folder"),
])
@pytest.mark.parametrize("command", ["train", "export"])
def test_an_export_that_cannot_be_written_exits_2_before_training(tmp_path, capsys, no_training, where,
                                                                  expected, command):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link.json").symlink_to(tmp_path / "elsewhere.json")
    target = str(tmp_path / where)
    argv = (["train", "--export", target] if command == "train" else ["export", target]) + [
        "--model", "rf", "-K", "5", "--epochs", "1", "--threads", "1"]
    start = time.perf_counter()
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2 and no_training == [], err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err  # one sentence, nothing else
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "elsewhere.json").exists() and temp_files(tmp_path) == []


def test_output_checks_create_nothing(tmp_path):
    out = tmp_path / "new" / "deeper"
    assert check_output_folder(out) == out and not (tmp_path / "new").exists()
    assert check_output_file(tmp_path / "x.json") == tmp_path / "x.json"
    assert sorted(tmp_path.iterdir()) == []


def test_a_sweep_into_an_unwritable_folder_fails_before_any_run(tmp_path, capsys, monkeypatch):
    import engine.experiments.sweep.backend

    (tmp_path / "a-file").write_text("x")
    monkeypatch.setattr(engine.experiments.sweep.backend, "train_row", lambda *a, **k: pytest.fail("a run started"))
    code = cli.main(["sweep", "--quick", "--models", "rigl", "--ks", "1", "--seeds", "0", "--epochs", "1",
                     "--workers", "1", "--out", str(tmp_path / "a-file" / "out"), "--json"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot be created" in err and "a-file is a file" in err, err


# --- SIGTERM: exit 143 --------------------------------------------------------------------------------------

def test_sigterm_stops_a_sweep_with_143_keeping_finished_rows_and_no_temporary_file(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([str(PYTHON), "-m", "engine.cli", "sweep", "--quick", "--models", "rigl,random",
                             "--ks", "1,3,5,7", "--seeds", "0,1,2", "--epochs", "3", "--workers", "1", "--out",
                             str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline:  # the first finished run
            line = proc.stderr.readline()
            if line.replace(" ", "").startswith("[1/") or not line:
                break
        assert line.replace(" ", "").startswith("[1/"), line
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err[-3000:]
    assert "terminated" in err and "Traceback" not in err
    rows, notes = read_rows_log(out / ROWS_FILE)
    assert 1 <= len(rows) < 24 and notes == []
    assert (out / "sweep.json").exists() and temp_files(out) == []


SIGTERM_MID_COMMAND = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from engine import cli

    which, folder = sys.argv[1], Path(sys.argv[2])

    def terminate_after(module, name):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            out = real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGTERM)
            return out
        setattr(module, name, wrapper)

    if which == "hardware-study":
        import engine.experiments.hardware_study as study
        terminate_after(study, "run_job")
        argv = ["hardware-study", "--quick", "--models", "rf", "--seeds", "0", "--epochs", "1", "--workers", "1",
                "--out", str(folder / "out")]
    else:
        import engine.nets.hardware as hardware
        from engine.config.run_config import RunConfig
        from engine.io.topology import export_result
        from engine.training.loop import run_training
        export_result(run_training(RunConfig(model="rf", resonators_per_chain=5, epochs=1)), folder / "net.json")
        terminate_after(hardware, "robustness")
        argv = ["robustness", str(folder / "net.json"), "--knob", "device.power_noise", "--values", "0,0.3",
                "--repeats", "1", "--no-figure", "--out", str(folder / "out")]
    sys.exit(cli.main(argv))
""")


@pytest.mark.parametrize("command", ["hardware-study", "robustness"])
def test_sigterm_stops_hardware_study_and_robustness_with_143(tmp_path, command):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([str(PYTHON), "-c", SIGTERM_MID_COMMAND, command, str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert "terminated" in proc.stderr and "Traceback" not in proc.stderr
    for folder in (tmp_path, tmp_path / "out"):
        assert not folder.exists() or temp_files(folder) == []
    if command == "hardware-study":  # the finished run is kept, its summary written
        assert len(read_rows_log(tmp_path / "out" / ROWS_FILE)[0]) == 1
        assert (tmp_path / "out" / "hardware.json").exists()
