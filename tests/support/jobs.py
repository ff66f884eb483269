"""A long `mlscale run` of 2 ranks in the background under a real launcher (mpirun or torchrun), and
its ranks' processes: for the tests and measurements that kill or stop one rank
(tests/bench/test_abort.py, benchmarks/abort_times.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from support.run import TINY_SYNTHETIC, child_env, mlscale_cmd

# Each launcher's variable holding a rank's number, by which its process is found.
RANK_VARIABLE = {"mpirun": "OMPI_COMM_WORLD_RANK", "torchrun": "RANK", "srun": "SLURM_PROCID"}


def rank_process(candidates, launcher: str, rank: int, marker: str = "mlscale") -> psutil.Process | None:
    """The process among `candidates` that is rank `rank` of an mlscale run (`marker` in its command line)."""
    for proc in candidates:
        try:
            if proc.environ().get(RANK_VARIABLE[launcher]) == str(rank) and marker in proc.cmdline():
                return proc
        except psutil.Error:
            continue
    return None


class BackgroundJob:
    def __init__(self, root: Path, backend: str, *extra: str, launcher: str = "mpirun", run_id: str = "long"):
        self.root, self.run_id, self.launcher = Path(root), run_id, launcher
        self.log = self.root.parent / f"{self.root.name}.{run_id}.log"
        run = ["run", "synthetic", *TINY_SYNTHETIC, "--epochs", "1000", "--steps-per-epoch", "50",
               "--backend", backend, "--out", str(root), "--run-id", run_id, *extra]  # fmt: skip
        if launcher == "mpirun":
            argv = mlscale_cmd(*run, ranks=2)
        else:
            torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
            argv = [str(torchrun), "--nproc-per-node", "2", "-m", "mlscale", *run]
        self.signalled_at = 0.0
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=child_env())

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def training_rank(self, rank: int, timeout: float = 240) -> psutil.Process:
        """Rank `rank`'s process once every rank trains (rank 0 has logged its first epoch)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the job ended before training\n{self.output()[-3000:]}")
            if "epoch 1:" in self.output():
                found = rank_process(psutil.Process(self.proc.pid).children(recursive=True), self.launcher, rank)
                if found is not None:
                    return found
            time.sleep(0.5)
        raise AssertionError(f"rank {rank} not found training within {timeout} s\n{self.output()[-3000:]}")

    def signal_rank(self, rank: int, signum: int) -> None:
        process = self.training_rank(rank)
        self.signalled_at = time.monotonic()
        os.kill(process.pid, signum)

    def wait(self, timeout: float = 240) -> tuple[int, float]:
        """The job's exit status and the seconds from the signal to its end; kills what is left on a timeout."""
        try:
            code = self.proc.wait(timeout=timeout)
            return code, time.monotonic() - self.signalled_at
        finally:
            if self.proc.poll() is None:
                for child in psutil.Process(self.proc.pid).children(recursive=True):
                    child.kill()
                self.proc.kill()
                self.proc.wait()

    def record(self) -> dict:
        return json.loads((self.root / self.run_id / "record.json").read_text())
