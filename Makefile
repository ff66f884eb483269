# mlscale: `make test` installs everything and runs the tests; `make demo` runs a
# real multi-rank benchmark end to end. Both work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Slow builds (Horovod, larcv3) are cached here, outside the repository.
WHEEL_CACHE ?= $(HOME)/.cache/mlscale/wheels
export MLSCALE_WHEEL_CACHE := $(WHEEL_CACHE)
STAMP := $(VENV)/.mlscale-installed
PYTEST_ARGS ?=

.PHONY: install test demo bench lint format clean

install: $(STAMP)

$(STAMP): requirements/base.txt requirements/dev.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -r requirements/dev.txt
	$(PIP) install --no-deps -e .
	touch $@

test: install
	OMP_NUM_THREADS=1 $(VENV)/bin/pytest $(PYTEST_ARGS) tests

demo: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash scripts/demo.sh

bench: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash scripts/bench.sh

lint: install
	$(VENV)/bin/ruff check mlscale tests benchmarks research
	$(VENV)/bin/ruff format --check mlscale tests benchmarks research

format: install
	$(VENV)/bin/ruff check --fix mlscale tests benchmarks research
	$(VENV)/bin/ruff format mlscale tests benchmarks research

clean:
	rm -rf $(VENV) build *.egg-info runs demo-runs demo-data

# Optional parts (Horovod, larcv3, SLURM) add their targets and test
# prerequisites in mk/*.mk.
-include mk/*.mk
