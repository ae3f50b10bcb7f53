"""Shared test set-up.

Qt runs offscreen (set here, at import, before anything imports Qt). The app's fixtures use a throwaway
QSettings file and redirect every default QSettings location to a temporary folder, so tests never read or
write the user's settings. The ``window`` fixture holds the main window for the whole test and closes it at
teardown, which cancels any run and waits for the worker threads (a QThread destroyed while running aborts the
process); it is handed over once the dataset is loaded and the first network is on display. Every QMessageBox
the app would open (all go through rfexplorer.dialogs) is replaced by a recorder, so no modal dialog can block.
"""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

RUN_TIMEOUT_MS = 120_000
READY_TIMEOUT_MS = 60_000


@pytest.fixture(scope="session", autouse=True)
def session_run_store(tmp_path_factory):
    """Fixtures of a wider scope (a module's sweep, a Ray cluster) run before the per-test store below is set:
    they record into this session's throwaway store, never the user's."""
    path = tmp_path_factory.mktemp("session-store") / "runs.sqlite"
    saved = os.environ.get("RFEXPLORER_STORE")
    os.environ["RFEXPLORER_STORE"] = str(path)
    yield path
    if saved is None:
        os.environ.pop("RFEXPLORER_STORE", None)
    else:
        os.environ["RFEXPLORER_STORE"] = saved


@pytest.fixture(autouse=True)
def run_store(tmp_path_factory, monkeypatch):
    """Every test records its runs into its own throwaway run store (engine.io.store), never the user's."""
    path = tmp_path_factory.mktemp("store") / "runs.sqlite"
    monkeypatch.setenv("RFEXPLORER_STORE", str(path))
    return path


@pytest.fixture(scope="session")
def mini():
    """The embedded MNIST subset, loaded once (tests must not modify its tensors)."""
    from engine.data import load_dataset

    return load_dataset("mnist-mini")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run torch on one thread for a module (small tensors; the other core stays free), then restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def qapp_args():
    return ["rfexplorer-tests"]


@pytest.fixture(scope="session")
def app_env(qapp, tmp_path_factory):
    """The QApplication with the app's theme and QSettings confined to a temporary folder."""
    from PySide6.QtCore import QSettings

    qapp.setOrganizationName("rfexplorer-tests")
    qapp.setApplicationName("rfexplorer-tests")
    folder = str(tmp_path_factory.mktemp("qsettings"))
    for fmt in (QSettings.NativeFormat, QSettings.IniFormat):
        for scope in (QSettings.UserScope, QSettings.SystemScope):
            QSettings.setPath(fmt, scope, folder)
    from rfexplorer import theme

    theme.apply_theme(qapp)
    return qapp


@pytest.fixture
def settings(app_env, tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "rfexplorer-test-settings.ini"), QSettings.IniFormat)


class DialogRecorder(list):
    """Stands in for QMessageBox in rfexplorer.dialogs: records (kind, title, text), returns at once."""

    def box(self):
        from PySide6.QtWidgets import QMessageBox

        rec = self

        def make(kind):
            def show(parent, title, text, *args, **kwargs):
                rec.append((kind, title, text))
                return QMessageBox.Ok
            return staticmethod(show)

        return type("RecordedMessageBox", (), {"warning": make("warning"), "critical": make("critical"),
                                               "information": make("information"), "question": make("question"),
                                               "about": make("about"), "Ok": QMessageBox.Ok})

    def kinds(self):
        return [k for k, _, _ in self]


@pytest.fixture
def dialogs(monkeypatch):
    from rfexplorer import dialogs as app_dialogs

    rec = DialogRecorder()
    monkeypatch.setattr(app_dialogs, "QMessageBox", rec.box())
    return rec


@pytest.fixture
def choose_file(monkeypatch):
    """choose_file(path): the next file dialog the app opens answers ``path`` (None: cancelled)."""
    from rfexplorer import dialogs as app_dialogs

    answers = []

    def answer(*_args, **_kwargs):
        return (str(answers.pop(0)) if answers and answers[0] is not None else "", "")

    fake = type("AnsweringFileDialog", (), {"getOpenFileName": staticmethod(answer),
                                            "getSaveFileName": staticmethod(answer),
                                            "getExistingDirectory": staticmethod(lambda *a, **k: answer()[0])})
    monkeypatch.setattr(app_dialogs, "QFileDialog", fake)
    return answers.append


def wait_until_ready(qtbot, window, timeout=READY_TIMEOUT_MS):
    """Wait (with an event loop) until the window's dataset is loaded and a network is on display."""
    qtbot.waitUntil(lambda: window.datasets.info is not None and window.explorer.state is not None,
                    timeout=timeout)


@pytest.fixture
def make_window(app_env, settings, dialogs, qtbot):
    """Factory for main windows, handed over ready (dataset loaded, first network shown); every window made is
    closed (threads joined) at teardown."""
    from rfexplorer.main_window import MainWindow

    made = []

    def make(s=None, ready=True):
        w = MainWindow(s if s is not None else settings)
        w.resize(1400, 900)
        w.show()
        made.append(w)
        if ready:
            wait_until_ready(qtbot, w)
        return w

    yield make
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    for w in made:
        w.close()
        assert not w.controller._thread.isRunning()
        assert not w.controller._sweep_thread.isRunning()
        w.deleteLater()
    made.clear()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    gc.collect()  # here, in the GUI thread, never later in some worker thread


@pytest.fixture
def window(make_window):
    return make_window()


@pytest.fixture
def set_controls():
    """set_controls(window, model='rf', k=10, epochs=1, ...): put the controls in a known state."""

    def apply(window, model="rf", k=10, epochs=1, batch=100, seed=0, dataset="mnist-mini"):
        c = window.controls
        if c.dataset_combo.findData(dataset) < 0:
            c.add_dataset_file(dataset)
        c.select_dataset(dataset)
        c.set_model(model)
        c.set_k(k)
        c.epochs_spin.setValue(epochs)
        c.batch_spin.setValue(batch)
        c.seed_spin.setValue(seed)
        c.lr_spin.setValue(0.0)

    return apply
