"""The CPU time Horovod's background thread takes while the training code computes: each rank starts Horovod
(one allreduce), then sleeps, and reports the process CPU time spent during the sleep, which is all Horovod's.

    python research/horovod_idle_cpu.py [--ranks 2] [--seconds 8] [--repeats 3] [--binding tensorflow|torch]

Horovod negotiates every HOROVOD_CYCLE_TIME ms with collectives of its controller, and Open MPI busy-polls
while it waits for the other ranks; where ranks share few cores (the 2-core development machine) that time is
taken from the compute. Runs each setting under `mpirun -np RANKS`: Horovod's defaults, Open MPI told to yield
when idle (OMPI_MCA_mpi_yield_when_idle=1), and a 10 ms cycle, `--repeats` times in turn. Prints CPU seconds
per wall second of each rank in each repeat, and their median over ranks and repeats.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

SETTINGS = {
    "defaults": {},
    "OMPI_MCA_mpi_yield_when_idle=1": {"OMPI_MCA_mpi_yield_when_idle": "1"},
    "HOROVOD_CYCLE_TIME=10": {"HOROVOD_CYCLE_TIME": "10"},
}

PROBE = """
import sys, time
binding = sys.argv[1]
if binding == "torch":
    import torch, horovod.torch as hvd
    one = torch.ones(1)
else:
    import tensorflow as tf, horovod.tensorflow as hvd
    one = tf.ones(1)
hvd.init()
hvd.allreduce(one)
cpu, wall = time.process_time(), time.time()
time.sleep(float(sys.argv[2]))
print(f"IDLE {hvd.rank()} {(time.process_time() - cpu) / (time.time() - wall):.3f}", flush=True)
hvd.allreduce(one)
hvd.shutdown()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--binding", choices=("tensorflow", "torch"), default="tensorflow")
    args = parser.parse_args()
    path = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    print(f"{args.ranks} ranks, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"horovod.{args.binding}, {args.seconds:g} s idle")  # fmt: skip
    shares: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.repeats):
        for name, extra in SETTINGS.items():  # interleaved, so load from other jobs falls on each alike
            env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **extra}
            cmd = [shutil.which("mpirun", path=path), "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                   "-np", str(args.ranks), *(a for k in extra for a in ("-x", k)), sys.executable, "-c", PROBE,
                   args.binding, str(args.seconds)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode:
                sys.exit(f"failed ({proc.returncode}): {name}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
            shares[name] += [float(line.split()[2]) for line in proc.stdout.splitlines() if line.startswith("IDLE ")]
    print("| setting | CPU s per wall s (every rank, every repeat) | median |\n|:--|:--|--:|")
    for name, values in shares.items():
        print(f"| {name} | {', '.join(f'{v:.2f}' for v in values)} | {statistics.median(values):.2f} |")


if __name__ == "__main__":
    main()
