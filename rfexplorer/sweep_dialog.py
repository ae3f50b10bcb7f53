"""The "Run sweep" dialog: which models, chain lengths K and seeds to compare
(engine.experiments.sweep.runner.SweepSpec), and
where the runs execute: the same backends as ``rfexplorer-cli sweep --backend local|ray`` (Ray only when it can
be imported). The sweep itself runs in the engine process (rfexplorer.engine_process). The dialog says how long
the sweep should take, from the session's finished runs (rfexplorer.eta.estimate_sweep: seconds per epoch by
model and K, times epochs, divided among the parallel runs), or that there is no estimate yet."""
from __future__ import annotations

import os
from typing import Optional

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QGridLayout,
                               QGroupBox, QLabel, QLineEdit, QSpinBox, QVBoxLayout, QWidget)

from engine.config.run_config import RunConfig, removed_synapses_pct
from engine.config.models import get_spec, list_models

from . import theme
from .eta import RunTimes, estimate_sweep

#: Chain lengths offered by default (those up to N), then N itself (the dense end).
DEFAULT_KS = (1, 10, 100)
DEFAULT_SEEDS = "0, 1, 2"
#: The sweep backends offered, with their labels (engine.experiments.sweep.runner.BACKENDS; 'ray' only when importable).
BACKEND_LABELS = {"local": "This machine (local processes)", "ray": "Ray (a local instance)"}


def available_backends() -> list[str]:
    from engine.experiments.sweep.ray_backend import ray_available

    return ["local"] + (["ray"] if ray_available() else [])


def default_ks(n_inputs: int) -> str:
    ks = [k for k in DEFAULT_KS if k < n_inputs] + [n_inputs]
    return ", ".join(str(k) for k in ks)


def parse_ints(text: str, what: str, lo: int, hi: int) -> tuple[int, ...]:
    values = []
    for part in text.replace(";", ",").replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = int(part)
        except ValueError:
            raise ValueError(f"{what}: {part!r} is not a whole number") from None
        if not lo <= v <= hi:
            raise ValueError(f"{what}: {v} is outside {lo}…{hi}")
        values.append(v)
    if not values:
        raise ValueError(f"{what}: give at least one value")
    return tuple(dict.fromkeys(values))


class SweepDialog(QDialog):
    def __init__(self, base: RunConfig, n_inputs: int, parent: Optional[QWidget] = None,
                 times: Optional[RunTimes] = None) -> None:
        """``times``: how long the session's finished runs took (rfexplorer.eta.RunTimes), for the estimate of
        the sweep's duration."""
        super().__init__(parent)
        self.setWindowTitle("Run an accuracy-vs-sparsity sweep")
        self.base = base
        self.n_inputs = n_inputs
        self.times = times if times is not None else RunTimes()
        self.estimate = None  #: rfexplorer.eta.SweepEstimate of the sweep described (None while invalid)
        lay = QVBoxLayout(self)
        intro = QLabel(f"Every selected model × K × seed is trained on <b>{base.dataset}</b> in the background; "
                       f"results join the accuracy-vs-sparsity view as they arrive. The dense perceptron runs once "
                       f"per seed. Each model uses its tuned default learning rate.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        models = QGroupBox("Models")
        grid = QGridLayout(models)
        self.model_checks: dict[str, QCheckBox] = {}
        for i, m in enumerate(list_models()):
            spec = get_spec(m)
            box = QCheckBox(spec.label)
            box.setToolTip(spec.description)
            box.setChecked(not (spec.is_rf and not spec.trains_topology))  # the ablation is opt-in
            box.setStyleSheet(f"QCheckBox {{ color: {theme.model_color(m)}; }}")
            box.toggled.connect(self._validate)
            grid.addWidget(box, i // 2, i % 2)
            self.model_checks[m] = box
        lay.addWidget(models)
        form = QFormLayout()
        self.ks_edit = QLineEdit(default_ks(n_inputs))
        self.ks_edit.setToolTip(f"Resonators per chain (1…{n_inputs}), separated by commas")
        self.seeds_edit = QLineEdit(DEFAULT_SEEDS)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 500)
        self.epochs_spin.setValue(min(base.epochs, 3))
        form.addRow("Resonators per chain K", self.ks_edit)
        form.addRow("Seeds", self.seeds_edit)
        form.addRow("Epochs per run", self.epochs_spin)
        self.backend_combo = QComboBox()
        for name in available_backends():
            self.backend_combo.addItem(BACKEND_LABELS[name], name)
        self.backend_combo.setToolTip("Where the runs execute, as rfexplorer-cli sweep --backend local|ray "
                                      "(Ray is offered when it is installed: pip install 'rfexplorer[cluster]')")
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(1, max(1, os.cpu_count() or 1))
        self.workers_spin.setValue(1)
        self.workers_spin.setToolTip("Runs at the same time (worker processes, or Ray CPUs); each uses one "
                                     "torch thread when more than one")
        form.addRow("Run on", self.backend_combo)
        form.addRow("Parallel runs", self.workers_spin)
        lay.addLayout(form)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.button(QDialogButtonBox.Ok).setText("Start sweep")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        for w in (self.ks_edit, self.seeds_edit):
            w.textChanged.connect(self._validate)
        self.epochs_spin.valueChanged.connect(self._validate)
        self.workers_spin.valueChanged.connect(self._validate)
        self._validate()

    def backend(self) -> str:
        """'local' or 'ray' (engine.experiments.sweep.runner.BACKENDS)."""
        return str(self.backend_combo.currentData())

    def spec(self):
        """The SweepSpec described by the dialog (ValueError if invalid)."""
        from engine.experiments.sweep.runner import SweepSpec

        models = tuple(m for m, box in self.model_checks.items() if box.isChecked())
        ks = parse_ints(self.ks_edit.text(), "K", 1, self.n_inputs)
        seeds = parse_ints(self.seeds_edit.text(), "seeds", 0, 2**31 - 1)
        base = self.base.with_(lr=None, epochs=int(self.epochs_spin.value()))
        return SweepSpec(models=models, ks=ks, seeds=seeds, base=base, workers=int(self.workers_spin.value()))

    @Slot()
    def _validate(self, *_args) -> None:
        ok = self.buttons.button(QDialogButtonBox.Ok)
        try:
            spec = self.spec()
        except ValueError as exc:
            self.summary.setText(f"<span style='color:{theme.ERROR}'>{exc}</span>")
            ok.setEnabled(False)
            return
        jobs = spec.jobs(self.n_inputs)
        removed = ", ".join(f"{removed_synapses_pct(k, self.n_inputs):.4g}" for k in spec.ks)
        self.estimate = estimate_sweep(jobs, self.times, spec.workers)
        self.summary.setText(f"{len(jobs)} runs; synapses removed: {removed} %.<br>Expected time: "
                             f"{self.estimate.describe()}.")
        ok.setEnabled(True)
