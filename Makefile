# rfexplorer: `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data
OUT    ?= results/reference

.PHONY: venv run test bench reproduce reproduce-quick reproduce-multilayer reproduce-hardware screenshots clean

# Create .venv once and (re)install the project in editable mode when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,cluster]'
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	$(VENV)/bin/rfexplorer

# The suite sets QT_QPA_PLATFORM=offscreen itself (tests/conftest.py).
test: venv
	$(PY) -m pytest

bench: venv
	$(PY) benchmarks/run_all.py

# The reference sweep (the seed paper's Figure 1b) on full MNIST, then its figure.
reproduce: venv
	$(VENV)/bin/rfexplorer-cli sweep --data-dir $(DATA) --dataset mnist --out $(OUT)
	$(PY) -m rfexplorer.figures $(OUT)/sweep.json $(OUT)/sweep.png

# Single-layer against multilayer networks at comparable synapse counts, on MNIST and drones, then the figure.
ML_OUT ?= results/multilayer
reproduce-multilayer: venv
	$(VENV)/bin/rfexplorer-cli sweep --multilayer --dataset mnist --data-dir $(DATA) --out $(ML_OUT)/mnist
	$(VENV)/bin/rfexplorer-cli sweep --multilayer --dataset drones --out $(ML_OUT)/drones
	$(PY) -m rfexplorer.network_figure $(ML_OUT)/multilayer.png $(ML_OUT)/mnist/sweep.json $(ML_OUT)/drones/sweep.json

# What an RF chip needs: rf and rf-input at K = 10 against tuning range, bits, jitter and spread (about 20 min on 2 cores).
HW_OUT ?= results/hardware
reproduce-hardware: venv
	$(VENV)/bin/rfexplorer-cli hardware-study --data-dir $(DATA) --out $(HW_OUT)
	$(PY) -m rfexplorer.hardware_figure $(HW_OUT)/hardware.json $(HW_OUT)/hardware.png

reproduce-quick: venv
	$(VENV)/bin/rfexplorer-cli sweep --quick --out results/quick
	$(PY) -m rfexplorer.figures results/quick/sweep.json results/quick/sweep.png

# SWEEP=results/reference/sweep.json shows a reference sweep behind the runs in the accuracy view.
screenshots: venv
	$(PY) -m rfexplorer.screenshots $(if $(SWEEP),--sweep $(SWEEP))

clean:
	rm -rf build dist *.egg-info .pytest_cache
