"""Time limits and preemption: how long from SIGUSR1 to a checkpoint, a "preempted" record and exit 75,
against the 10 s goal of issue 14, and what the per-step "stop now?" agreement costs against a step.

    python benchmarks/preempt_latency.py [--rounds 3] [--model resnet18]

- latency: `mlscale run synthetic` (1 rank alone, 2 ranks under `mpirun -np 2`) is started; once epoch 1
  is logged, SIGUSR1 goes to the process (to mpirun, which forwards it to the ranks); the clock runs until
  the process exits. The record gives the checkpoint's share (`preemption.checkpoint_seconds`).
  Printed: median seconds, and the ratio to the 10 s goal.
- stop check: under `mpirun -np 2`, the cost of one comparison of the ranks' flags (the allreduce of two
  floats that `TrainControl.stop_now()` makes, over the ddp backend), and its share of the steps of the
  tiny synthetic model (mean step from `ranks.jsonl`): one comparison per `check_every` steps, about
  CHECK_SECONDS of them; with every step compared (the old way), the share would be cost / step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mlscale.bench.preempt import CHECK_SECONDS, MAX_CHECK_EVERY

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 10.0


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return {k: v for k, v in env.items() if not k.startswith(("OMPI_", "PMIX_", "PRTE_"))}


def _mpirun(ranks: int) -> list[str]:
    if ranks == 1:
        return []
    mpirun = shutil.which("mpirun", path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    return [mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", str(ranks),
            "-x", "PYTHONPATH", "-x", "OMP_NUM_THREADS", "-x", "PYTHONUNBUFFERED"]  # fmt: skip


def latency(ranks: int, model: str, out: Path, run_id: str) -> tuple[float, dict]:
    argv = [*_mpirun(ranks), sys.executable, "-m", "mlscale", "run", "synthetic", "--model", model,
            "--image-size", "64", "--batch-size", "8", "--steps-per-epoch", "20", "--test-steps", "2",
            "--epochs", "1000", "--no-progress", "--out", str(out), "--run-id", run_id]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())
    started = threading.Event()

    def watch():
        for line in proc.stderr:
            if "epoch 1:" in line:
                started.set()
        started.set()

    threading.Thread(target=watch, daemon=True).start()
    if not started.wait(600) or proc.poll() is not None:
        raise SystemExit(f"{run_id}: the run ended before training was under way")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGUSR1)
    rc = proc.wait(timeout=300)
    elapsed = time.monotonic() - t0
    if rc != 75:
        raise SystemExit(f"{run_id}: exit {rc}, not 75")
    record = json.loads((out / run_id / "record.json").read_text())
    return elapsed, record["preemption"]


def stop_check_cost(steps: int = 2000) -> None:
    """Under mpirun -np 2: time the comparison stop_now() makes (ddp backend); rank 0 prints microseconds."""
    import numpy as np

    from mlscale.launch.comm import create_communicator
    from mlscale.launch.env import detect_environment

    comm = create_communicator("ddp", detect_environment())
    flags = np.zeros(2)
    for _ in range(50):
        comm.allreduce(flags, "max")
    comm.barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        comm.allreduce(flags, "max")
    per_call = comm.allreduce((time.perf_counter() - t0) / steps, "max")
    if comm.rank == 0:
        print(json.dumps({"stop_now_us": per_call * 1e6}))
    comm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--stop-check", action="store_true", help=argparse.SUPPRESS)  # the mpirun child
    args = parser.parse_args()
    if args.stop_check:
        return stop_check_cost()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for ranks in (1, 2):
            times, ckpt, stop = [], [], []
            for k in range(args.rounds):
                elapsed, pre = latency(ranks, args.model, out, f"r{ranks}-{k}")
                times.append(elapsed)
                ckpt.append(pre["checkpoint_seconds"])
                stop.append(pre["stop_seconds"])
            med = statistics.median(times)
            print(
                f"{ranks} rank(s), {args.model}: SIGUSR1 -> exit 75 median {med:.2f} s "
                f"(all {', '.join(f'{t:.2f}' for t in times)}); agreed stop {statistics.median(stop):.3f} s, "
                f"checkpoint {statistics.median(ckpt):.3f} s; goal {GOAL_S:.0f} s: ratio {med / GOAL_S:.2f}"
            )
        step_run = [*_mpirun(2), sys.executable, "-m", "mlscale", "run", "synthetic", "--model", "tiny",
                    "--image-size", "32", "--batch-size", "8", "--steps-per-epoch", "50", "--test-steps", "1",
                    "--epochs", "2", "--no-progress", "--out", str(out), "--run-id", "steps"]  # fmt: skip
        subprocess.run(step_run, check=True, capture_output=True, env=_env())
        ranks = [json.loads(line) for line in (out / "steps" / "ranks.jsonl").read_text().splitlines()]
        step_s = statistics.mean(sum(r["phases"][p]["mean"] for p in r["phases"]) for r in ranks)
    check = subprocess.run([*_mpirun(2), sys.executable, __file__, "--stop-check"], check=True,
                           capture_output=True, text=True, env=_env())  # fmt: skip
    us = json.loads(check.stdout.strip().splitlines()[-1])["stop_now_us"]
    every = max(1, min(MAX_CHECK_EVERY, int(CHECK_SECONDS / step_s)))
    print(f"stop check (2 ranks, ddp/gloo): {us:.1f} us per comparison; tiny synthetic step {step_s * 1e3:.2f} ms, "
          f"compared every {every} steps: {100 * us * 1e-6 / (every * step_s):.3f}% of the step time "
          f"(every step: {100 * us * 1e-6 / step_s:.2f}%)")  # fmt: skip


if __name__ == "__main__":
    main()
