"""A real one-node SLURM cluster for the tests, started and stopped by scripts/slurm-local.sh.

Use the `slurm_cluster` fixture (import it into the test module). It installs Debian's
slurm-wlm and munge when they are absent (root and apt-get needed; otherwise the tests
skip with the reason), starts munged, slurmctld and slurmd with every file in a
temporary directory, and stops exactly those daemons at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.run import REPO

SCRIPT = REPO / "scripts" / "slurm-local.sh"
LAUNCHER_PREFIXES = ("SLURM_", "PMI", "PMIX_", "OMPI_")


@dataclass
class SlurmCluster:
    dir: Path

    @property
    def env(self) -> dict[str, str]:
        """Variables a client command (sbatch, squeue) needs to talk to this cluster."""
        return {"SLURM_CONF": str(self.dir / "slurm.conf")}

    def run(self, *argv: str, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")} | self.env | kw.pop("env", {})
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr}{self.logs()}")
        return proc

    def logs(self) -> str:
        out = ""
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.dir / "log" / name
            if path.is_file():
                out += f"\n--- {name}\n" + "\n".join(path.read_text().splitlines()[-15:])
        return out

    def wait_idle(self, job_ids: list[str], timeout: float = 150) -> None:
        """Wait until none of the jobs is in the queue any more."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.run("squeue", "-h", "-o", "%i", "-j", ",".join(job_ids), check=False)
            # squeue fails on a job slurmctld has already purged ("Invalid job id"): gone, so idle. Any other
            # failure (slurmctld busy, a socket timeout) says nothing about the jobs: ask again.
            gone = proc.returncode != 0 and "Invalid job id" in proc.stderr
            if gone or (proc.returncode == 0 and not proc.stdout.split()):
                return
            time.sleep(1)
        raise AssertionError(f"jobs {job_ids} still queued after {timeout} s{self.logs()}")


def host_resolves() -> bool:
    """Whether this host's name resolves (the scripts' MASTER_ADDR is the first node's name);
    some CI containers lack it in /etc/hosts, and the tests then pin 127.0.0.1."""
    try:
        socket.gethostbyname(socket.gethostname())
        return True
    except OSError:
        return False


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> SlurmCluster:
    if os.geteuid() != 0:
        pytest.skip("real SLURM tests need root (SlurmUser=root; slurm-wlm/munge installed with apt-get)")
    if not all(shutil.which(t) for t in ("slurmctld", "slurmd", "munged")):
        if not shutil.which("apt-get"):
            pytest.skip("slurm-wlm/munge are not installed and there is no apt-get to install them")
        proc = _script("install", timeout=900)
        if proc.returncode != 0:
            pytest.skip(f"could not install slurm-wlm/munge with apt-get: {(proc.stderr or proc.stdout)[-500:]}")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    proc = _script("start", str(cluster.dir), timeout=120)
    try:
        assert proc.returncode == 0, f"slurm-local.sh start failed:\n{proc.stdout}\n{proc.stderr}"
        yield cluster
    finally:
        _script("stop", str(cluster.dir), timeout=60)
