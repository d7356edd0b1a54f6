# Two entry points on a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.vlprep-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test test-fast golden fuzz bench bench-array bench-ray install clean

install: $(STAMP)

# torch/torchvision are pinned first: these CUDA builds run on the CPU and are the pair whose torchvision imports
# (transformers' Qwen3-VL processor and qwen-vl-utils need it).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test,ray]'
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	$(PY) -m pytest -q

# the fast tier: no test that starts ms-swift, trains, sends signals, opens a browser, starts Ray or runs a hypothesis
# property (tests/tiers.py); on every core (pytest-xdist: none of its tests times a signal)
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -n auto --durations=15

# ms-swift's answers on the bundled record sets, captured again into tests/golden/counting.json (tests/test_golden.py)
golden: $(STAMP)
	$(PY) tests/golden/capture.py

fuzz: $(STAMP)
	VLPREP_FUZZ_EXAMPLES=2000 $(PY) -m pytest -q tests/test_fuzz.py

bench: $(STAMP)
	$(PY) bench/lint_bench.py
	$(PY) bench/cache_bench.py

# peak RSS reading a generated 1 GB JSON array (and a 100 MB one): SIZE_MB=100 for a quicker run
bench-array: $(STAMP)
	$(PY) bench/array_bench.py --size-mb $(or $(SIZE_MB),1024)

# records/s of `vlprep cache --engine ray` on 1 and 2 workers, and the driver's share (bench/ray_bench.py)
bench-ray: $(STAMP)
	$(PY) bench/ray_bench.py

clean:
	rm -rf demo-out bench-out .pytest_cache
