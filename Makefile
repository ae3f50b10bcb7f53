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

# The fast engine tests under every CPU kernel set torch and MKL may pick on another machine (results must not
# depend on it): ATen's default, AVX2 and AVX-512 kernels (each where /proc/cpuinfo lists it), then MKL held to
# SSE4.2. About 1.5 min a pass on 2 idle cores.
CPU_TESTS ?= tests/test_physics.py tests/test_fast_weight.py tests/test_topology.py tests/test_evaluation.py \
             tests/test_recommended.py tests/test_config.py tests/test_baselines.py
.PHONY: test-cpus
test-cpus: venv
	@set -e; caps=default; \
	grep -qsw avx2 /proc/cpuinfo && caps="$$caps avx2"; \
	grep -qsw avx512f /proc/cpuinfo && caps="$$caps avx512"; \
	for cap in $$caps; do \
	  echo "== ATEN_CPU_CAPABILITY=$$cap ($$(ATEN_CPU_CAPABILITY=$$cap $(PY) -c 'import torch; print(torch.backends.cpu.get_cpu_capability())'))"; \
	  ATEN_CPU_CAPABILITY=$$cap $(PY) -m pytest -q -p no:cacheprovider $(CPU_TESTS); \
	done; \
	echo "== MKL_ENABLE_INSTRUCTIONS=SSE4_2"; \
	MKL_ENABLE_INSTRUCTIONS=SSE4_2 $(PY) -m pytest -q -p no:cacheprovider $(CPU_TESTS)

bench: venv
	$(PY) benchmarks/run_all.py
	$(PY) benchmarks/bench_store.py --json results/bench/bench_store.json

# Long fuzz campaign of every file reader (tests/fuzzing.py): prints the outcome counts, worst RSS and slowest
# refusal, and saves each failing file under $(FUZZ_OUT)/failures (replay: python tests/fuzzing.py --replay DIR).
FUZZ_OUT ?= results/fuzz
FUZZ_TOPOLOGIES ?= 1000
FUZZ_DATASETS ?= 300
.PHONY: fuzz
fuzz: venv
	$(PY) tests/fuzzing.py --topologies $(FUZZ_TOPOLOGIES) --datasets $(FUZZ_DATASETS) --out $(FUZZ_OUT)

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

# What an RF chip needs: rf and rf-input at K = 10 against tuning range, bits, jitter and spread (about 13 min on 2 cores).
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
