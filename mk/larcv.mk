# larcv3 (the CosmicTagger data library) is source-only on PyPI and takes ~15-25
# minutes to build on 2 cores, so its wheel is built once into $(WHEEL_CACHE) and
# only installed from there afterwards. The build needs Debian's libhdf5-dev and
# an old-CMake-policy override (see docs/cosmic-tagger.md).
LARCV_VERSION := 3.5.1
LARCV_WHEEL = $(firstword $(wildcard $(WHEEL_CACHE)/larcv-$(LARCV_VERSION)-*.whl))
LARCV_STAMP := $(VENV)/.larcv-$(LARCV_VERSION)-installed

.PHONY: larcv larcv-wheel

larcv: $(LARCV_STAMP)

# Without HDF5's C headers the wheel cannot be built: say so and go on (the larcv3
# compatibility tests then skip with a reason); a failing build still fails.
larcv-wheel: install
	@if [ -z "$(LARCV_WHEEL)" ]; then \
	  if [ ! -f /usr/include/hdf5/serial/hdf5.h ] && [ ! -f /usr/include/hdf5.h ] \
	     && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libhdf5-dev) \
	      || echo "larcv: apt-get install libhdf5-dev failed"; fi; \
	  if [ ! -f /usr/include/hdf5/serial/hdf5.h ] && [ ! -f /usr/include/hdf5.h ]; then \
	    echo "larcv: skipped, needs libhdf5-dev (apt-get install libhdf5-dev)"; exit 0; fi; \
	  mkdir -p $(WHEEL_CACHE); \
	  CMAKE_POLICY_VERSION_MINIMUM=3.5 CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	    $(PIP) wheel --no-deps larcv==$(LARCV_VERSION) -w $(WHEEL_CACHE); \
	fi

$(LARCV_STAMP): | larcv-wheel
	@wheel=$$(ls $(WHEEL_CACHE)/larcv-$(LARCV_VERSION)-*.whl 2>/dev/null | head -1); \
	if [ -n "$$wheel" ]; then $(PIP) install --no-deps "$$wheel" && touch $@; fi

test: larcv
