"""Job scripts and time limits: the directives that ask for a warning signal and a requeue (SLURM, PBS), and
a generated script run for real here: SIGTERM to the batch shell goes to mpirun as SIGUSR1, the ranks
checkpoint and the script exits 75; run again, it continues (--resume auto) to one joined record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.run import child_env, run_mlscale

SLURM_WANTED = ["#SBATCH --signal=B:USR1@180", "#SBATCH --requeue", 'scontrol requeue "$SLURM_JOB_ID"']
RUN = ["run", "example", "--points", "1024", "--batch-size", "16", "--epochs", "8", "--no-progress"]


def _dry_run(system: str, *args: str) -> str:
    return run_mlscale("launch", "--system", system, "--nodes", "1", *args, "--dry-run", "--", *RUN).stdout


def _scripts(text: str) -> list[str]:
    """The scripts a dry run prints, without its closing summary line."""
    body = text.rsplit("\n# ", 1)[0]
    return [part.split("\n", 1)[1] for part in body.split("# ---- ")[1:]]


@pytest.mark.parametrize(
    ("system", "args", "wanted", "unwanted"),
    [
        ("generic-slurm-gpu", [], SLURM_WANTED, []),
        ("generic-slurm-gpu", ["--signal-seconds", "600"], ["#SBATCH --signal=B:USR1@600"], []),
        ("generic-slurm-gpu", ["--signal-seconds", "0"], ["#SBATCH --requeue"], ["--signal="]),
        ("polaris-like", [], ["#PBS -r y", "trap ", "submit "], ["scontrol"]),
    ],
)  # fmt: skip
def test_directives_and_trap_render_and_parse(tmp_path, system, args, wanted, unwanted):
    (script,) = _scripts(_dry_run(system, *args))
    for text in wanted:
        assert text in script
    for text in unwanted:
        assert text not in script
    assert "--run-id n1-" in script and script.rstrip().endswith("--resume auto")
    path = tmp_path / "job.sh"
    path.write_text(script)
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_bad_signal_seconds_is_one_line():
    proc = run_mlscale("launch", "--system", "local", "--signal-seconds", "-5", "--dry-run", "--", *RUN, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == "mlscale: error: --signal-seconds -5: must be 0 or more"


def test_user_resume_flag_is_owned_by_launch():
    proc = run_mlscale("launch", "--system", "local", "--dry-run", "--", *RUN, "--resume", "x", check=False)
    assert proc.returncode == 2 and "mlscale launch sets --resume for each point" in proc.stderr


def _run_until(script, needle: str, send: int | None):
    """Run the job script; once `needle` is in its output, send it `send`. Returns (exit status, output)."""
    # The script calls mpirun by name: `make test` runs pytest without the venv's bin on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = subprocess.Popen(["bash", str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=child_env({"PATH": path}))  # fmt: skip
    seen: list[str] = []
    found = threading.Event()

    def read():
        for line in proc.stderr:
            seen.append(line)
            if needle in line:
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if send is not None:
            assert found.wait(300), "".join(seen)[-3000:]
            assert proc.poll() is None, "".join(seen)[-3000:]
            proc.send_signal(send)
        rc = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    found.wait(10)
    return rc, "".join(seen)


def test_sigterm_to_the_script_checkpoints_and_the_next_run_resumes(tmp_path):
    system = tmp_path / "here.yaml"
    system.write_text(
        "name: here\nlabel: here\ndescription: this machine, mpirun\nscheduler: none\nlauncher: mpirun\n"
        "cores_per_node: 2\ngpus_per_node: 0\n"
        "launcher_args: [--allow-run-as-root, --oversubscribe, --bind-to, none]\nenv: {OMP_NUM_THREADS: 1}\n"
    )
    sweep = tmp_path / "sweep"
    run_mlscale("launch", "--system", system, "--ranks", "2", "--out", sweep, "--", *RUN)
    script = sweep / "scripts" / "n1-r2-rep0.sh"
    run_dir = sweep / "runs" / "n1-r2-rep0"

    rc, out = _run_until(script, "epoch 2:", signal.SIGTERM)  # as PBS warns a job
    assert rc == 75, out[-3000:]
    assert "preempted (exit 75): checkpoint written; submit" in out
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "preempted" and record["preemption"]["signal"] == "SIGUSR1"
    assert (run_dir / "checkpoint" / "model.pt").is_file()

    rc, out = _run_until(script, "", None)  # submitted again
    assert rc == 0, out[-3000:]
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "ok" and [s["status"] for s in record["segments"]] == ["preempted", "ok"]
    assert [e["epoch"] for e in record["epoch_stats"]] == list(range(1, 9))
