# larcv3 (the CosmicTagger data library) from the registry's source release, patched for numpy 2
# (scripts/build-larcv.sh, patches/larcv3-numpy2-strides.patch). It takes 15-30 minutes to build on
# 2 cores, so its wheel (larcv-3.5.1+mlscale<N>) is built once into $(WHEEL_CACHE) and only installed
# from there afterwards; the script returns at once when the venv already has it.
.PHONY: larcv

# The build needs Debian's libhdf5-dev: install it where we can (root with apt-get). Without it the
# script exits 3; say so and go on (the larcv3 compatibility tests then skip); a failing build still fails.
larcv: install
	@if [ ! -f /usr/include/hdf5/serial/hdf5.h ] && [ ! -f /usr/include/hdf5.h ] \
	   && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	   && [ -z "$$(ls $(WHEEL_CACHE)/larcv-*+mlscale*.whl 2>/dev/null)" ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libhdf5-dev) \
	    || echo "larcv: apt-get install libhdf5-dev failed"; fi
	@VENV=$(VENV) WHEEL_CACHE=$(WHEEL_CACHE) bash scripts/build-larcv.sh; rc=$$?; \
	if [ $$rc = 3 ]; then echo "larcv: skipped, needs libhdf5-dev (apt-get install libhdf5-dev)"; \
	elif [ $$rc != 0 ]; then exit $$rc; fi

test: larcv
