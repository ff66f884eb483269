"""Run under mpirun: exercise one backend's collectives and print one JSON line per rank."""

import json
import sys

import numpy as np

from mlscale.launch.comm import create_communicator
from mlscale.launch.env import detect_environment

backend = sys.argv[1]
comm = create_communicator(backend, detect_environment())
rank, size = comm.rank, comm.size
comm.barrier()
out = {
    "rank": rank,
    "sum": comm.allreduce(float(rank + 1), "sum"),
    "max": comm.allreduce(float(rank + 1), "max"),
    "mean_vec": comm.allreduce(np.array([rank, 10.0 * rank]), "mean").tolist(),
    "gather": comm.gather({"r": rank}),
    "bcast": comm.bcast({"from": rank} if rank == 0 else None),
}
voxels = np.dtype([("id", "<u8"), ("value", "<f4")])
chunks = None
if rank == 0:
    chunks = [np.array([(100 * r + i, r + 0.5) for i in range(3)], dtype=voxels) for r in range(size)]
got = comm.scatter_array(chunks)
out["scatter_ids"] = got["id"].tolist()
out["scatter_values"] = got["value"].tolist()
# Receive buffers every rank already holds: one contiguous send array, only the data travels.
into = np.zeros(3, dtype=voxels)
got_into = comm.scatter_array(np.stack(chunks) if rank == 0 else None, out=into)
out["scatter_into_ids"] = into["id"].tolist() if got_into is into else None
print(json.dumps(out), flush=True)
comm.close()
