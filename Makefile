# Two entry points (see README):  `make demo`  and  `make test`.
# Both create the virtual environment on first use; torch is installed first as the pinned
# CPU wheel so nothing pulls CUDA builds (GPU users: see README).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
LOCK := requirements.lock

.PHONY: setup demo test test-fast bench lock clean-cache

setup: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[dev]"
	touch $(STAMP)

# the main job: record the catalog, compute flow, run every study at the demo size (seed 000, then
# seed 002, then seed 003's levels; about 35 min on 2 cores the first time), then serve the dashboard
demo: setup
	$(BIN)/workbench demo

test: setup
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(BIN)/python -m pytest -q -ra

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/python -m benchmarks

# Refresh the lock: resolve the newest versions pyproject.toml allows in a scratch venv and freeze
# them (torch excluded: it is installed first, CPU or CUDA). Then run `make test` and commit.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	.venv-lock/bin/python -m pip install --quiet -e ".[dev]"
	{ sed -n '1,2p' $(LOCK); .venv-lock/bin/python -m pip freeze --exclude-editable | grep -iv '^torch=='; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf .venv-lock

clean-cache:
	rm -rf $${WORKBENCH_CACHE:-$$HOME/.cache/workbench}/datasets
