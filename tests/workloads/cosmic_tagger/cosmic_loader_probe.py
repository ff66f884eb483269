"""Run under mpirun: iterate CosmicLoader with each strategy and write what every rank got.

usage: cosmic_loader_probe.py DATA_FILE OUT_JSON GLOBAL_BATCH
Rank 0 writes {strategy/shuffle: [per rank: [per step: {"entries": [...], "charge": sha, "labels": sha}]]}.
"""

from __future__ import annotations

import hashlib
import json
import sys

from mlscale.errors import UserError
from mlscale.launch.comm import create_communicator
from mlscale.launch.env import detect_environment
from mlscale.workloads.cosmic_tagger.loader import CosmicLoader


def digest(array) -> str:
    return hashlib.sha1(array.numpy().tobytes()).hexdigest()


def main() -> None:
    path, out, global_batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    comm = create_communicator("mpi", detect_environment())
    results: dict = {}
    for shuffle in (False, True):
        for strategy in ("scatter", "indices", "shard"):
            loader = CosmicLoader(path, comm, global_batch, strategy, downsample=2, shuffle=shuffle, seed=7)
            steps = []
            for epoch in range(2):
                for charge, labels, entries in loader:
                    steps.append({"epoch": epoch, "entries": entries.tolist(), "charge": digest(charge),
                                  "labels": digest(labels), "voxels": int((charge > 0).sum())})  # fmt: skip
            loader.close()
            results[f"{strategy}/{'shuffle' if shuffle else 'ordered'}"] = comm.gather(steps)
    try:
        CosmicLoader(path, comm, global_batch + 1, "scatter")
        results["odd_batch_error"] = None
    except UserError as err:
        results["odd_batch_error"] = str(err)
    if comm.is_root:
        with open(out, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
