"""Distributed CosmicTagger loading at 2 ranks against one process reading alone.
# MPIRUN-RANKS: 2

For each strategy (scatter: root reads and scatters fixed-size sparse buffers;
indices: root scatters entry indices, ranks read their own; shard: static
shards), one epoch of batches through CosmicLoader, timed on every rank, and
the root's time in the distribution collectives alone. The baseline is rank 0
reading (and densifying) the same events by itself. Goal: distribution costs
at most 10% of the 1-rank read time.

    mpirun -np 2 python benchmarks/scatter.py [--backend ddp|mpi] [--file F.h5] [--events 32] [--global-batch 4]
        [--downsample 1] [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mlscale.io.larcv import LarcvFile, LarcvWriter, densify, densify_labels
from mlscale.io.sparse_pack import PACKED_DTYPE
from mlscale.launch.comm import create_communicator
from mlscale.launch.env import detect_environment
from mlscale.workloads.cosmic_tagger.loader import CosmicLoader
from mlscale.workloads.cosmic_tagger.synth import EventGenerator, SynthParams


class TimedComm:
    """The communicator, with the time spent in its collectives added up."""

    def __init__(self, comm):
        self.comm, self.seconds = comm, 0.0

    def __getattr__(self, name):
        return getattr(self.comm, name)

    def _timed(self, fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        self.seconds += time.perf_counter() - t
        return out

    def scatter_array(self, chunks, root=0, out=None):
        return self._timed(self.comm.scatter_array, chunks, root, out)

    def bcast(self, obj, root=0):
        return self._timed(self.comm.bcast, obj, root)


def pure_scatter_seconds(comm, loader: CosmicLoader, path: Path, global_batch: int, repeat: int) -> float:
    """An epoch's worth of scatters of real packed buffers, every rank waiting in the
    collective already: the communication itself, without the read/densify imbalance.
    Best of `repeat` epochs, as the 1-rank read it is compared with."""
    packed = None
    if comm.is_root:
        loader.file = LarcvFile(path)
        packed = loader._packed_global_batch(np.arange(global_batch))
        loader.file.close()
    out = np.empty((loader.local_batch, loader.max_voxels), dtype=PACKED_DTYPE)
    best = np.inf
    for _ in range(repeat):
        comm.barrier()
        t = time.perf_counter()
        for _ in range(len(loader)):
            comm.scatter_array(packed, out=out)  # as the loader calls it
        best = min(best, comm.allreduce(time.perf_counter() - t, "max"))
    return best


def make_file(path: Path, n: int) -> None:
    gen = EventGenerator(SynthParams(), seed=0)
    with LarcvWriter(path, ["sbndwire", "sbnd_cosmicseg"]) as writer:
        for start in range(0, n, 16):
            charge, labels = gen.events(min(16, n - start))
            writer.append({"sbndwire": charge, "sbnd_cosmicseg": labels})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path)
    parser.add_argument("--events", type=int, default=32, help="synthetic full-resolution events when no --file")
    parser.add_argument("--global-batch", type=int, default=4)
    parser.add_argument("--downsample", type=int, default=1)
    parser.add_argument("--backend", default="ddp", help="communicator: ddp (gloo) or mpi (mpi4py)")
    parser.add_argument("--repeat", type=int, default=5, help="best of N for the 1-rank read and the pure scatter")
    args = parser.parse_args()
    comm = create_communicator(args.backend, detect_environment())
    tmp = tempfile.mkdtemp() if comm.is_root else None
    path = args.file or (Path(tmp) / "bench.h5" if tmp else None)
    if comm.is_root and not args.file:
        make_file(path, args.events)
    path = Path(comm.bcast(str(path)))

    baseline = None
    if comm.is_root:
        read = np.inf
        for _ in range(args.repeat):  # the file opened anew each round, as a loader opens it
            t = time.perf_counter()
            with LarcvFile(path) as f:
                n = f.n_entries // args.global_batch * args.global_batch
                for entry in range(n):
                    f.read("sbndwire", [entry]), f.read("sbnd_cosmicseg", [entry])
            read = min(read, time.perf_counter() - t)
        with LarcvFile(path) as f:
            t = time.perf_counter()
            for start in range(0, n, args.global_batch):
                entries = range(start, start + args.global_batch)
                densify(f.read("sbndwire", entries), args.downsample)
                densify_labels(f.read("sbnd_cosmicseg", entries), args.downsample)
            full = time.perf_counter() - t
        baseline = {"events": n, "read": read, "read_densify": full}
        print(f"{path.name}: {n} events, global batch {args.global_batch}, {comm.size} ranks")
        print(f"1-rank read:           {n / read:8.1f} events/s (sparse read only, best of {args.repeat})")
        print(f"1-rank read + densify: {n / full:8.1f} events/s")
    baseline = comm.bcast(baseline)

    for strategy in ("scatter", "indices", "shard"):
        timed = TimedComm(comm)
        comm.barrier()
        t = time.perf_counter()
        loader = CosmicLoader(path, timed, args.global_batch, strategy, downsample=args.downsample, shuffle=False)
        events = sum(len(batch[2]) for batch in loader)
        elapsed = time.perf_counter() - t
        loader.close()
        slowest = comm.allreduce(elapsed, "max")
        # The root's time in the collectives: a receiving rank also waits there for the root to read.
        dist = comm.bcast(timed.seconds)
        total = int(comm.allreduce(float(events), "sum"))
        if comm.is_root:
            share = dist / baseline["read"] * 100
            speedup = total / slowest / (baseline["events"] / baseline["read_densify"])
            print(
                f"{strategy:8s} {total / slowest:7.1f} events/s end to end ({speedup:.2f}x the 1-rank read + densify)"
                f"; root in collectives {dist * 1e3:6.1f} ms = {share:5.1f}% of the 1-rank read time"
            )
        if strategy == "scatter":
            pure = pure_scatter_seconds(comm, loader, path, args.global_batch, args.repeat)
            if comm.is_root:
                share = pure / baseline["read"] * 100
                verdict = "within" if share <= 10 else "over"
                print(
                    f"{'':8s} pure scatter of the epoch's buffers (ranks ready): {pure * 1e3:6.1f} ms = "
                    f"{share:5.1f}% of the 1-rank read time ({verdict} the 10% goal)"
                )


if __name__ == "__main__":
    main()
