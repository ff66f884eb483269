"""An error on one rank ends the whole job, under a real `mpirun -np 2`, with each backend.

Before, the failing rank returned and blocked in MPI_Finalize while its peer waited in a collective: the
job hung for minutes (until gloo's timeout, or for ever under the mpi backend). Now the failing rank ends
the job (`mlscale.launch.abort`). Rank-local errors are injected with MLSCALE_TEST_FAIL_AT
(`mlscale.bench.faults`). "Promptly" is asserted as well under a minute, start-up included, on a loaded
machine: a hang would last at least the collective timeout (300 s by default).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from support.run import TINY_SYNTHETIC, child_env, mlscale_cmd

BACKENDS = ("ddp", "mpi")
PROMPT_S = 60


def _job(
    root, *extra, backend: str, fail_at: str | None = None, run_id: str = "r"
) -> tuple[subprocess.CompletedProcess, float]:
    env = {"MLSCALE_TEST_FAIL_AT": fail_at} if fail_at else {}
    argv = mlscale_cmd("run", "synthetic", *TINY_SYNTHETIC, "--backend", backend, "--out", root, "--run-id", run_id,
                       *extra, ranks=2)  # fmt: skip
    if fail_at:
        argv[argv.index("-x") : argv.index("-x")] = ["-x", "MLSCALE_TEST_FAIL_AT"]
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=child_env(env))
    return proc, time.monotonic() - t0


def _leftovers(root) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("backend", BACKENDS)
def test_setup_errors_found_on_rank_0_end_every_rank(tmp_path, backend):
    (tmp_path / "taken").mkdir()
    proc, took = _job(tmp_path, backend=backend, run_id="taken")
    assert proc.returncode == 2 and took < PROMPT_S, (took, proc.stderr[-3000:])
    line = f"mlscale: error: {tmp_path / 'taken'}: run directory already exists; choose another --run-id"
    assert proc.stderr.count(line) == 1 and "Traceback" not in proc.stderr
    assert list((tmp_path / "taken").iterdir()) == [] and _leftovers(tmp_path) == []

    proc, took = _job(tmp_path, "--save-weights", tmp_path / "missing" / "w.pt", backend=backend)
    assert proc.returncode == 2 and took < PROMPT_S, (took, proc.stderr[-3000:])
    assert proc.stderr.count("--save-weights directory") == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_user_error_on_rank_1_alone_ends_the_job(tmp_path, backend):
    proc, took = _job(tmp_path, backend=backend, fail_at="1:setup")
    assert proc.returncode == 2 and took < PROMPT_S, (took, proc.stderr[-3000:])
    assert proc.stderr.count("set-up error injected on rank 1") == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_exception_mid_training_ends_the_job(tmp_path, backend):
    proc, took = _job(tmp_path, backend=backend, fail_at="1:epoch2")
    assert proc.returncode != 0 and took < PROMPT_S, (took, proc.stderr[-3000:])
    assert "error injected on rank 1" in proc.stderr

    # On rank 0 the failure is recorded before the job ends.
    proc, took = _job(tmp_path, backend=backend, fail_at="0:epoch2", run_id="r0")
    assert proc.returncode != 0 and took < PROMPT_S, (took, proc.stderr[-3000:])
    record = json.loads((tmp_path / "r0" / "record.json").read_text())
    assert record["status"] == "failed" and "error injected on rank 0" in record["error"]
