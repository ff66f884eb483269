# Job scripts and sweeps (mlscale launch): a private one-node SLURM for the real-SLURM tests.
# `make test` installs slurm-wlm and munge first where it can (root + apt-get); elsewhere those tests skip.
SLURM_LOCAL := bash scripts/slurm-local.sh
SLURM_DIR ?= /tmp/mlscale-slurm

.PHONY: slurm-install slurm-start slurm-stop test-jobs

slurm-install:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		$(SLURM_LOCAL) install || echo "slurm-install failed: the real-SLURM tests will skip"; \
	else echo "slurm-install: not root or no apt-get: the real-SLURM tests will skip"; fi

# A cluster to try scripts by hand: make slurm-start; export SLURM_CONF=$(SLURM_DIR)/slurm.conf; sbatch ...
slurm-start: slurm-install
	$(SLURM_LOCAL) start $(SLURM_DIR)

slurm-stop:
	$(SLURM_LOCAL) stop $(SLURM_DIR)

test-jobs: install slurm-install
	OMP_NUM_THREADS=1 $(VENV)/bin/pytest $(PYTEST_ARGS) tests/launch/jobs/

test: slurm-install
