# Horovod 0.28.1 from the registry's source release, patched for our toolchain (docs/horovod.md).
# The wheel is built once into $(WHEEL_CACHE) and reinstalled from there; the script returns at
# once when the venv already has the wheel for this torch.
.PHONY: horovod horovod-check

horovod: install
	VENV=$(VENV) WHEEL_CACHE=$(WHEEL_CACHE) bash scripts/build-horovod.sh

horovod-check: horovod
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/horovodrun --check-build

test: horovod

# benchmarks/synthetic_vs_horovod.py needs it too.
bench: horovod
