#!/usr/bin/env bash
# Build larcv3 (the CosmicTagger data library) from the registry's source release, patched, into a wheel
# cache outside the repository, then install the cached wheel into the venv.
#
# larcv 3.5.1 is source-only and does not work as shipped under numpy 2 (see docs/cosmic-tagger.md):
#   - its bundled pybind11 2.9 reads a dtype's item size from a field that moved in numpy 2 and gets 0, so the
#     arrays that BatchData::pydata (the queue-IO batch loader), Tensor::as_array and Particle::as_array return
#     have stride 0 and every element equals the first: patches/larcv3-numpy2-strides.patch gives explicit strides;
#   - its CMake files ask for an old policy level (CMAKE_POLICY_VERSION_MINIMUM=3.5 for CMake >= 4);
#   - it needs HDF5's C headers (Debian: libhdf5-dev).
# The wheel's version carries the patch level (3.5.1+mlscale1); bump PATCH_LEVEL when the patch changes, so
# that a stale cached or installed wheel is replaced. The build takes 15-30 minutes on 2 cores.
#
# Environment: VENV (default .venv), WHEEL_CACHE (default ~/.cache/mlscale/wheels), LARCV_VERSION,
# KEEP_BUILD_DIR=1 to keep the unpacked source and the build log.
set -euo pipefail

LARCV_VERSION=${LARCV_VERSION:-3.5.1}
VENV=${VENV:-.venv}
WHEEL_CACHE=${WHEEL_CACHE:-${MLSCALE_WHEEL_CACHE:-$HOME/.cache/mlscale/wheels}}
PY="$VENV/bin/python"
PATCH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/patches/larcv3-numpy2-strides.patch"
PATCH_LEVEL=1
WANT_VERSION="$LARCV_VERSION+mlscale$PATCH_LEVEL"

log() { echo "build-larcv: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [ "$(installed_version "$PY" larcv)" = "$WANT_VERSION" ]; then
    log "larcv $WANT_VERSION already installed in $VENV"
    exit 0
fi

mkdir -p "$WHEEL_CACHE"
WHEEL=$(ls "$WHEEL_CACHE"/larcv-"$WANT_VERSION"-*.whl 2>/dev/null | head -n1 || true)

if [ -z "$WHEEL" ]; then
    if [ ! -f /usr/include/hdf5/serial/hdf5.h ] && [ ! -f /usr/include/hdf5.h ]; then
        log "cannot build larcv: HDF5's C headers are missing (apt-get install libhdf5-dev)"
        exit 3
    fi
    BUILD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/larcv-build.XXXXXX")
    if [ "${KEEP_BUILD_DIR:-0}" != 1 ]; then trap 'rm -rf "$BUILD_DIR"' EXIT; fi
    log "building larcv $WANT_VERSION in $BUILD_DIR"
    start=$(date +%s)
    # --no-binary for larcv only: its build requirements (numpy, scikit-build, cmake) come as wheels.
    "$PY" -m pip download --quiet --no-deps --no-binary larcv "larcv==$LARCV_VERSION" -d "$BUILD_DIR"
    tar -xzf "$BUILD_DIR/larcv-$LARCV_VERSION.tar.gz" -C "$BUILD_DIR"
    SRC="$BUILD_DIR/larcv-$LARCV_VERSION"
    # The sdist ships a stale scikit-build tree from its maker's machine; build from a clean one.
    rm -rf "$SRC/_skbuild"
    patch -d "$SRC" -p1 --forward --quiet <"$PATCH" || { log "patch failed: $PATCH"; exit 1; }
    sed -i "s/^__version__ = .*/__version__ = \"$WANT_VERSION\"/" "$SRC/larcv/_version.py"
    require_patch "$SRC/larcv/_version.py" "\"$WANT_VERSION\""

    export CMAKE_POLICY_VERSION_MINIMUM=3.5
    export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
    pip_wheel_or_fail "$PY" "$BUILD_DIR" "$SRC"
    WHEEL=$(cache_wheel "$(ls "$BUILD_DIR"/dist/larcv-*.whl)" "$WHEEL_CACHE")
    log "built $(basename "$WHEEL") in $(($(date +%s) - start)) s"
fi

log "installing $WHEEL"
"$PY" -m pip install --quiet --no-deps "$WHEEL"
