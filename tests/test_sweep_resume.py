"""Resumable sweeps: rows.jsonl written run by run, reruns skip finished runs, interrupts keep what finished;
and the stderr progress bar of long commands."""
from __future__ import annotations

import io
import json
import os
import signal

import pytest

from engine import cli
from engine.config.run_config import RunConfig
from engine.core.progress import CancelToken
from engine.core.progress_bar import ProgressBar
from engine.experiments.sweep.runner import ROWS_FILE, SweepSpec, read_rows_log, run_sweep


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs torch on one thread (see conftest.one_torch_thread)."""


def sweep_args(out, *extra):
    return ["sweep", "--quick", "--models", "rigl,random", "--ks", "1,5", "--seeds", "0", "--epochs", "1",
            "--workers", "1", "--out", str(out), "--json", "--one-at-a-time", *extra]


def run_cli(capsys, out, *extra):
    code = cli.main(sweep_args(out, *extra))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def log_lines(out) -> list[str]:
    return (out / ROWS_FILE).read_text(encoding="utf-8").splitlines()


def without_timestamps(doc: dict) -> dict:
    doc = dict(doc)
    doc.pop("created", None)
    doc["rows"] = [{k: v for k, v in r.items() if k != "created"} for r in doc["rows"]]
    return doc


def run_key(row: dict) -> tuple:
    return row["model"], row["resonators_per_chain"], row["seed"]


def comparable(row: dict) -> dict:
    """A row without what differs between two identical runs (wall-clock time, timestamps)."""
    return {k: v for k, v in row.items() if k not in ("created", "train_seconds")}


def spec(batch_runs: bool = False) -> SweepSpec:
    """Four runs, one at a time (the tests count rows as runs finish); ``batch_runs``: two batches of two."""
    return SweepSpec(models=("rigl", "random"), ks=(1, 5), seeds=(0,),
                     base=RunConfig(dataset="mnist-mini", epochs=1), workers=1, batch_runs=batch_runs)


def test_rows_are_logged_per_run_and_a_rerun_skips_them_all(tmp_path, capsys):
    out = tmp_path / "sw"
    code, stdout, err = run_cli(capsys, out)
    assert code == 0 and "resuming" not in err and "[4/4]" in err
    lines = log_lines(out)
    assert len(lines) == 4 and len({run_key(json.loads(line)) for line in lines}) == 4
    first = json.loads((out / "sweep.json").read_text())
    assert json.loads(stdout.strip().splitlines()[-1])["runs"] == 4

    code, stdout, err = run_cli(capsys, out)
    assert code == 0
    assert f"resuming: 4 of 4 runs already done in {out / ROWS_FILE}" in err
    assert "[1/4]" not in err  # nothing ran again
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["runs"] == 4 and summary["failed"] == 0
    assert log_lines(out) == lines
    assert without_timestamps(json.loads((out / "sweep.json").read_text())) == without_timestamps(first)


def test_a_deleted_line_reruns_only_that_run(tmp_path, capsys):
    out = tmp_path / "sw"
    assert run_cli(capsys, out)[0] == 0
    lines = log_lines(out)
    gone = json.loads(lines[1])
    (out / ROWS_FILE).write_text("\n".join(lines[:1] + lines[2:]) + "\n", encoding="utf-8")

    code, _, err = run_cli(capsys, out)
    assert code == 0 and "resuming: 3 of 4 runs already done" in err
    assert "[4/4]" in err and "[1/4]" not in err and err.count("%  ") == 1  # exactly one run line
    after = log_lines(out)
    assert len(after) == 4 and run_key(json.loads(after[-1])) == run_key(gone)
    assert json.loads(after[-1])["test_accuracy"] == gone["test_accuracy"]
    doc = json.loads((out / "sweep.json").read_text())
    assert sorted(run_key(r) for r in doc["rows"]) == sorted(run_key(json.loads(x)) for x in lines)


def test_a_truncated_last_line_is_ignored_and_that_run_redone(tmp_path, capsys):
    out = tmp_path / "sw"
    assert run_cli(capsys, out)[0] == 0
    text = (out / ROWS_FILE).read_text(encoding="utf-8")
    lines = text.splitlines()
    # a crash in the middle of writing the last row
    (out / ROWS_FILE).write_text(text[: len(text) - 1 - len(lines[-1]) // 2], encoding="utf-8")
    rows, notes = read_rows_log(out / ROWS_FILE)
    assert len(rows) == 3 and len(notes) == 1 and "last line" in notes[0]

    code, _, err = run_cli(capsys, out)
    assert code == 0 and "ignored the last line" in err and "resuming: 3 of 4 runs already done" in err
    rows, notes = read_rows_log(out / ROWS_FILE)  # the cut line was replaced, not appended to
    assert len(rows) == 4 and notes == []
    assert len(json.loads((out / "sweep.json").read_text())["rows"]) == 4


def test_a_garbage_last_line_is_ignored(tmp_path, capsys):
    out = tmp_path / "sw"
    assert run_cli(capsys, out)[0] == 0
    with open(out / ROWS_FILE, "a", encoding="utf-8") as f:
        f.write('{"model": "rigl", "resonators_per_ch\n')
    code, _, err = run_cli(capsys, out)
    assert code == 0 and "ignored the last line" in err and "resuming: 4 of 4 runs already done" in err


def test_failed_rows_are_retried(tmp_path, capsys):
    out = tmp_path / "sw"
    assert run_cli(capsys, out)[0] == 0
    lines = log_lines(out)
    failed = json.loads(lines[0])
    failed.update(test_accuracy=None, error="diverged (made up)")
    (out / ROWS_FILE).write_text("\n".join([json.dumps(failed)] + lines[1:]) + "\n", encoding="utf-8")
    code, stdout, err = run_cli(capsys, out)
    assert code == 0 and "resuming: 3 of 4 runs already done" in err
    assert json.loads(stdout.strip().splitlines()[-1])["failed"] == 0
    rows, _ = read_rows_log(out / ROWS_FILE)
    assert len(rows) == 5 and rows[-1]["error"] is None and run_key(rows[-1]) == run_key(failed)


def test_changed_settings_run_everything_again(tmp_path, capsys):
    out = tmp_path / "sw"
    assert run_cli(capsys, out)[0] == 0
    code, stdout, err = run_cli(capsys, out, "--epochs", "2")
    assert code == 0 and "resuming" not in err and "[4/4]" in err
    rows, _ = read_rows_log(out / ROWS_FILE)
    assert len(rows) == 8  # the 1-epoch rows stay in the file ...
    doc = json.loads((out / "sweep.json").read_text())
    assert len(doc["rows"]) == 4 and {r["epochs"] for r in doc["rows"]} == {2}  # ... but not in the results
    # and the 1-epoch sweep is still done
    code, _, err = run_cli(capsys, out)
    assert code == 0 and "resuming: 4 of 4 runs already done" in err


def test_an_interrupted_sweep_keeps_its_rows_and_a_rerun_completes_it(tmp_path):
    whole = run_sweep(spec(), out_dir=tmp_path / "whole")

    out = tmp_path / "cut"
    token = CancelToken()
    seen = []

    def stop_after_first(row):
        seen.append(row)
        token.set()

    partial = run_sweep(spec(), on_result=stop_after_first, cancel=token, out_dir=out)
    assert len(seen) == 1 and len(partial) == 1
    assert len(log_lines(out)) == 1
    assert len(json.loads((out / "sweep.json").read_text())["rows"]) == 1  # partial results written

    notes, plans = [], []
    resumed = run_sweep(spec(), out_dir=out, on_note=notes.append, on_plan=lambda n, d: plans.append((n, d)))
    assert plans == [(4, 1)] and any(n.startswith("resuming: 1 of 4 runs already done") for n in notes)
    assert len(log_lines(out)) == 4
    assert [comparable(r) for r in resumed] == [comparable(r) for r in whole]
    a = json.loads((out / "sweep.json").read_text())
    b = json.loads((tmp_path / "whole" / "sweep.json").read_text())
    assert [comparable(r) for r in a["rows"]] == [comparable(r) for r in b["rows"]]
    timeless = [[{k: v for k, v in g.items() if k != "mean_train_seconds"} for g in d["aggregate"]] for d in (a, b)]
    assert timeless[0] == timeless[1]


class _StopsInside(CancelToken):
    """A cancel token that, once armed, sets itself at its third look: inside the job that starts next (the
    backend looks once before starting a job, a batch once per step)."""

    def __init__(self) -> None:
        super().__init__()
        self.left: int | None = None

    def arm(self, _row=None) -> None:
        if self.left is None:
            self.left = 3

    def is_set(self) -> bool:
        if self.left is not None:
            self.left -= 1
            if self.left == 0:
                self.set()
        return super().is_set()


def test_a_batch_cut_short_gives_no_row_and_a_rerun_completes_it(tmp_path):
    whole = run_sweep(spec(batch_runs=True), out_dir=tmp_path / "whole")
    out = tmp_path / "cut"
    token, seen = _StopsInside(), []
    partial = run_sweep(
        spec(batch_runs=True), on_result=lambda row: (seen.append(row), token.arm()), cancel=token, out_dir=out
    )
    assert token.is_set()
    assert len(seen) == len(partial) == 2 and len(log_lines(out)) == 2  # the first batch whole, none of the second
    resumed = run_sweep(spec(batch_runs=True), out_dir=out)
    assert len(log_lines(out)) == 4
    assert [comparable(r) for r in resumed] == [comparable(r) for r in whole]


def test_sigterm_stops_a_sweep_cleanly(tmp_path, capsys, monkeypatch):
    import engine.training.loop as training

    real = training.run_training
    calls = []

    def run_then_terminate(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # handled by the sweep: sets its cancel token
        return result

    monkeypatch.setattr(training, "run_training", run_then_terminate)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "sw"
    code, stdout, err = run_cli(capsys, out)
    assert code == cli.EXIT_TERMINATED == 143 and "interrupted after 1 of 4 runs" in err
    assert signal.getsignal(signal.SIGTERM) == before
    assert len(calls) == 1 and len(log_lines(out)) == 1
    assert len(json.loads((out / "sweep.json").read_text())["rows"]) == 1


def test_progress_bar_draws_only_on_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(3, desc="sweep", unit="run", stream=stream)  # a StringIO is no terminal
    assert not bar.enabled
    bar.update(1)
    bar.write("a plain line")
    bar.close()
    assert stream.getvalue() == "a plain line\n"

    stream = io.StringIO()
    with ProgressBar(3, desc="sweep", unit="run", stream=stream, force=True) as bar:
        assert bar.enabled
        bar.update(1, postfix="rigl K=1")
        bar.update(2)
    assert "3/3" in stream.getvalue() and "run" in stream.getvalue()
    assert not ProgressBar(3, stream=io.StringIO(), force=True, quiet=True).enabled


def test_quiet_and_json_leave_train_output_alone(capsys):
    assert cli.main(["train", "--model", "rigl", "-K", "1", "--dataset", "mnist-mini", "--epochs", "1",
                     "--quiet", "--json"]) == 0
    captured = capsys.readouterr()
    last = json.loads(captured.out.strip().splitlines()[-1])
    assert last["model"] == "rigl" and "epoch 1/1" in captured.err
