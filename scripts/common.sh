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
