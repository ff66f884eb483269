"""Allreduce timing: the measured points the scaling projection's α–β model is fitted to.

    mpirun -np 2 python -m mlscale.bench.commbench --sizes 1e6 4e6 16e6 --json allreduce.json

times an allreduce of buffers of each size (bytes) with the chosen
communicator, `--repeats` times after one warm-up, and rank 0 writes the best
seconds per size: {"ranks": p, "backend": ..., "points": [{"bytes": n,
"seconds": t}, ...]} — the input of `mlscale.results.projection.fit_alpha_beta`.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mlscale.launch.comm import Communicator, create_communicator
from mlscale.launch.env import detect_environment
from mlscale.results.record import atomic_write_text


def time_allreduces(comm: Communicator, sizes: list[float], repeats: int = 5) -> list[float]:
    """Best (least disturbed) seconds of one allreduce of each size in bytes (float64 elements).

    The sizes take turns within each repeat, so a burst of load from elsewhere on
    the machine disturbs one repeat of every size rather than every repeat of one.
    """
    bufs = [np.ones(max(1, int(n) // 8), dtype=np.float64) for n in sizes]
    for buf in bufs:
        comm.allreduce(buf)  # warm-up: connections and buffers
    best = [np.inf] * len(bufs)
    for _ in range(repeats):
        for i, buf in enumerate(bufs):
            comm.barrier()
            t0 = time.perf_counter()
            comm.allreduce(buf)
            # The slowest rank's time is the collective's time.
            best[i] = min(best[i], comm.allreduce(time.perf_counter() - t0, "max"))
    return [float(t) for t in best]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlscale.bench.commbench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 4e6, 16e6], help="message sizes in bytes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="ddp")
    parser.add_argument("--json", metavar="FILE", help="rank 0 writes the results here (else prints them)")
    args = parser.parse_args(argv)
    env = detect_environment()
    comm = create_communicator(args.backend, env, "cpu")
    try:
        times = time_allreduces(comm, args.sizes, args.repeats)
        points = [{"bytes": float(n), "seconds": t} for n, t in zip(args.sizes, times, strict=True)]
    finally:
        comm.close()
    if env.rank == 0:
        text = json.dumps({"ranks": env.size, "backend": args.backend, "points": points}, indent=2) + "\n"
        if args.json:
            atomic_write_text(args.json, text)
        else:
            print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
