"""Communicator backends under a real 2-rank mpirun."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.run import child_env, mpirun_prefix

SCRIPT = Path(__file__).parent / "scripts" / "comm_check.py"


@pytest.mark.parametrize("backend", ["ddp", "mpi"])
def test_collectives_on_two_ranks(backend):
    proc = subprocess.run(
        mpirun_prefix(2) + [sys.executable, str(SCRIPT), backend],
        capture_output=True,
        text=True,
        timeout=180,
        env=child_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted(
        (json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")), key=lambda r: r["rank"]
    )
    assert len(results) == 2
    for r in results:
        assert r["sum"] == 3.0 and r["max"] == 2.0
        assert r["mean_vec"] == [0.5, 5.0]
        assert r["bcast"] == {"from": 0}
        assert r["scatter_ids"] == [100 * r["rank"] + i for i in range(3)]
        assert r["scatter_values"] == [r["rank"] + 0.5] * 3
        assert r["scatter_into_ids"] == r["scatter_ids"]
    assert results[0]["gather"] == [{"r": 0}, {"r": 1}]
    assert results[1]["gather"] is None


def test_single_backend_refuses_a_multi_rank_launch():
    code = (
        "from mlscale.launch.comm import create_communicator as c\n"
        "from mlscale.launch.env import detect_environment as d\n"
        "c('single', d())"
    )
    proc = subprocess.run(
        mpirun_prefix(2) + [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=child_env()
    )
    assert proc.returncode != 0
    assert "--backend single runs one process" in proc.stderr
