"""Write this rank's launcher-related environment variables to OUT_DIR/NAME_rank<R>.json.

Run it under a real launcher to record a fixture for tests/launch/test_launch_env_fixtures.py, e.g.
    mpirun -np 2 python scripts/record-launcher-env.py openmpi tests/launch/fixtures/launcher_env
    torchrun --nproc-per-node 2 scripts/record-launcher-env.py torchrun tests/launch/fixtures/launcher_env
    horovodrun --gloo -np 2 python scripts/record-launcher-env.py horovodrun tests/launch/fixtures/launcher_env
Only launcher variables are kept (no PATH, no home directory, no credentials).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's mlscale
from mlscale.fileio import atomic_write  # noqa: E402

PREFIXES = tuple("OMPI_ PMIX_ PRTE_ PMI_ HYDRA_ MPI_LOCAL TORCHELASTIC_ HOROVOD_ MASTER_ SLURM_ PALS_ ALPS_".split())
NAMES = set("RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE GROUP_RANK GROUP_WORLD_SIZE ROLE_RANK ROLE_WORLD_SIZE".split())
RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "HOROVOD_RANK", "RANK", "PMIX_RANK", "SLURM_PROCID")


def main() -> None:
    name, out_dir = sys.argv[1], Path(sys.argv[2])
    env = {k: v for k, v in sorted(os.environ.items()) if k in NAMES or k.startswith(PREFIXES)}
    rank = next(os.environ[v] for v in RANK_VARS if os.environ.get(v))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / f"{name}_rank{rank}.json", json.dumps(env, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
