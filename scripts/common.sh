# Shared by the demo and bench scripts: how to call mpirun here.
MPIRUN=(mpirun --oversubscribe --bind-to none)
if [ "$(id -u)" = 0 ]; then MPIRUN+=(--allow-run-as-root); fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# Helpers of the wheel build scripts (build-horovod.sh, build-larcv.sh).

# The version of distribution $2 installed for interpreter $1, or nothing.
installed_version() {
    "$1" - "$2" <<'PY' 2>/dev/null || true
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    print(version(sys.argv[1]))
except PackageNotFoundError:
    pass
PY
}

# Copy wheel $1 into cache folder $2 under a temporary name and rename it, so that a cut-off build never
# leaves half a wheel in the cache; prints the cached path.
cache_wheel() {
    local name
    name=$(basename "$1")
    cp "$1" "$2/.tmp.$name"
    mv "$2/.tmp.$name" "$2/$name"
    echo "$2/$name"
}

# Build a wheel from source tree $3 with interpreter $1 into $2/dist (more pip options after $3), its output in
# $2/build.log; on failure print the log's tail and exit the script. Run it directly, not in $(...).
pip_wheel_or_fail() {
    local py=$1 build_dir=$2 src=$3
    shift 3
    "$py" -m pip wheel --no-deps "$@" -w "$build_dir/dist" "$src" >"$build_dir/build.log" 2>&1 || {
        tail -n 60 "$build_dir/build.log" >&2
        log "build failed; full log in $build_dir/build.log (KEEP_BUILD_DIR=1 keeps it)"
        exit 1
    }
}

# Fail the script unless file $1 contains the fixed string $2: the check after each sed patch, so that a
# source release that no longer matches the sed stops the build instead of silently building unpatched.
require_patch() {
    grep -Fq -- "$2" "$1" || { log "patch failed: $1 lacks '$2'"; exit 1; }
}
