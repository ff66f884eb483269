"""`mlscale launch`: the Theta dry run, weak/strong argv, bad input, the sweep directory and its
manifest, a real local sweep under mpirun, and reading the queue of PBS and SLURM."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from support.run import REPO, SWEEP_RUN, child_env, run_mlscale

from mlscale.errors import UserError
from mlscale.launch.jobs.manifest import sweep_status
from mlscale.launch.jobs.schedulers import Pbs, Slurm
from mlscale.launch.jobs.sweep import plan_sweep
from mlscale.launch.jobs.system import load_system
from mlscale.results.record import write_run_dir

TINY = SWEEP_RUN


def test_theta_dry_run_prints_aprun_scripts_and_writes_nothing(tmp_path):
    # cosmic-tagger need not be registered: launch only builds argv, and imports neither workloads nor torch.
    code = (
        "import sys; from mlscale.cli import main; rc = main(sys.argv[1:]); "
        "assert 'torch' not in sys.modules, 'launch imported torch'; sys.exit(rc)"
    )
    import subprocess

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "launch",
            "--system",
            "theta-like",
            "--nodes",
            "1,2,4",
            "--dry-run",
            "--",
            "run",
            "cosmic-tagger",
            "--epochs",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for n in (1, 2, 4):
        assert f"#COBALT -n {n}\n" in out
        assert (
            f"\nmlscale_run aprun -n {n} -N 1 -cc depth -j 1 -d 64 {sys.executable} -m mlscale run cosmic-tagger "
            f"--epochs 2 --system theta --out {tmp_path}/sweeps/" in out
        )
    for line in (
        "export KMP_AFFINITY=granularity=fine,verbose,compact",
        "export OMP_NUM_THREADS=64",
        "export KMP_BLOCKTIME=0",
        "export MKLDNN_VERBOSE=0",
        "export MPICH_MAX_THREAD_SAFETY=multiple",
        "#COBALT -q debug-cache-quad",
        "#COBALT -t 01:00:00",
    ):
        assert out.count(line + "\n") == 3, line
    assert "dry run: nothing written" in out and list(tmp_path.iterdir()) == []


def _argv(points):
    return {p.id: p.argv[2:-6] for p in points}  # between "run W" and "--out D --run-id I --resume auto"


def test_weak_keeps_per_rank_batch_and_strong_fixes_the_global_batch():
    system = load_system("pearl-like")
    weak = plan_sweep(system, ["run", "w", "--batch-size", "8"], [], [1, 2, 4], None, "weak", 1, "R")
    assert _argv(weak) == {f"n1-r{r}-rep0": ["--batch-size", "8", "--system", "PEARL"] for r in (1, 2, 4)}
    assert weak[0].argv[-6:] == ["--out", "R", "--run-id", "n1-r1-rep0", "--resume", "auto"]

    strong = plan_sweep(system, ["run", "w", "--batch-size=8"], [], [2, 4, 8], None, "strong", 2, "R")
    assert [p.id for p in strong][:3] == ["n1-r2-rep0", "n1-r2-rep1", "n1-r4-rep0"]
    assert {tuple(a) for a in _argv(strong).values()} == {("--system", "PEARL", "--global-batch-size", "16")}

    given = plan_sweep(
        system, ["run", "w", "--global-batch-size", "64", "--system", "X"], [1, 2], [], None, "strong", 1, "R"
    )
    assert [(p.nodes, p.ranks, p.ranks_per_node) for p in given] == [(1, 16, 16), (2, 32, 16)]
    assert _argv(given)["n2-r32-rep0"] == ["--system", "X", "--global-batch-size", "64"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--nodes", "1", "--"], "nothing after --"),
        (["--nodes", "1", "--", "data", "x"], "-- data: mlscale launch starts `mlscale run`"),
        (["--nodes", "1", "--", "run", "--epochs", "2"], "-- run: name the workload"),
        (["--nodes", "1", "--", "run", "w", "--out", "x"], "-- ... --out: mlscale launch sets --out"),
        (["--nodes", "1", "--", "run", "w", "--run-id=x"], "--run-id: mlscale launch sets --run-id"),
        (["--nodes", "0", "--", "run", "w"], "--nodes 0: expected numbers of at least 1"),
        (["--nodes", "1,x", "--", "run", "w"], "--nodes 1,x: expected comma-separated whole numbers"),
        (["--", "run", "w"], "give --nodes and/or --ranks"),
        (["--nodes", "2", "--", "run", "w"], "has no scheduler, so every point must fit on one node"),
        (["--nodes", "1", "--scaling", "strong", "--", "run", "w"], "--scaling strong needs the global batch"),
        (["--nodes", "1", "--", "run", "w", "--global-batch-size", "8"], "--scaling weak keeps the per-rank"),
        (
            ["--ranks", "1,2", "--scaling", "strong", "--", "run", "w", "--global-batch-size", "3"],
            "global batch 3 does not divide by 2 ranks",
        ),
        (["--nodes", "1", "--array", "--", "run", "w"], "--array: scheduler none of local has no job arrays"),
    ],
)
def test_bad_launch_input_is_one_line(tmp_path, args, message):
    proc = run_mlscale("launch", "--system", "local", "--out", tmp_path / "s", *args, check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "system, args, message",
    [
        ("theta-like", ["--nodes", "1", "--account", "proj;x"], "--account 'proj;x': only letters"),
        ("theta-like", ["--nodes", "1", "--queue", "nosuch"], "--partition nosuch: not one of this system's"),
        ("theta-like", ["--nodes", "1", "--time", "1h"], "--time 1h: expected [D-]HH:MM:SS"),
        ("theta-like", ["--nodes", "5000"], "--nodes: theta-like has at most 4392 nodes"),
        ("pearl-like", ["--ranks", "17"], "--ranks 17: does not split evenly over 2 nodes of at most 16"),
        ("pearl-like", ["--nodes", "2", "--ranks", "3"], "ranks must be a multiple of the node count"),
    ],
)
def test_bad_site_options(tmp_path, system, args, message):
    proc = run_mlscale("launch", "--system", system, "--dry-run", *args, "--", "run", "w", check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def _plan(run_flags, scaling="weak", ranks=(1, 2, 4), workload="w"):
    return plan_sweep(load_system("pearl-like"), ["run", workload, *run_flags], [], list(ranks), None, scaling, 1, "R")


def _refusal(run_flags, **plan) -> str:
    with pytest.raises(UserError) as err:
        _plan(run_flags, **plan)
    return str(err.value)


@pytest.mark.parametrize("workload", ["w", "synthetic"])  # unknown here (run options only) and registered
def test_the_run_flags_are_read_as_the_run_reads_them(workload):
    """Abbreviations and --flag=value set the flags launch owns exactly as the full spelling does."""
    full = _refusal(["--global-batch-size", "64"], workload=workload)
    assert "--scaling weak keeps the per-rank --batch-size; drop --global-batch-size" in full
    for spelling in (["--global-batch", "64"], ["--global-b=64"]):
        assert "--scaling weak keeps the per-rank --batch-size" in _refusal(spelling, workload=workload)

    for flags in (["--out=x"], ["--ou", "x"], ["--o=x"], ["--epochs", "2", "--run=x"]):
        message = _refusal(flags, workload=workload)
        assert "mlscale launch sets --" in message and "for each point; leave it out" in message, message

    # Strong: every point carries --global-batch-size once, and no spelling of the user's is left.
    flags = ["--epochs", "2", "--global-batch", "32", "--batch=8", "--sys", "X", "--global-batch-size=64", "--no-amp"]
    points = _plan(flags, scaling="strong", workload=workload)
    assert [p.global_batch_size for p in points] == [64, 64, 64]
    expected = ["--epochs", "2", "--no-amp", "--system", "X", "--global-batch-size", "64"]
    assert [p.argv for p in points] == [
        ["run", workload, *expected, "--out", "R", "--run-id", p.id, "--resume", "auto"] for p in points
    ]

    # Strong from a per-rank --batch-size, however spelled: batch x smallest ranks, divisible by all.
    (point,) = _plan(["--batch", "8"], scaling="strong", ranks=[2], workload=workload)
    assert point.argv[2:-6] == ["--system", "PEARL", "--global-batch-size", "16"]
    message = _refusal(["--batch-s=8"], scaling="strong", ranks=[2, 3], workload=workload)
    assert "global batch 16 (--batch-size 8 times 2 ranks, the smallest point) does not divide by 3 ranks" in message
    # The rule is bench.batching's: its errors name the flag.
    assert "--global-batch-size: must be at least 1" in _refusal(
        ["--global-b", "0"], scaling="strong", workload=workload
    )
    assert "--batch-size: must be at least 1" in _refusal(["--batch", "0"], workload=workload)


def test_a_bad_run_flag_is_the_runs_own_one_line_error_at_planning(tmp_path):
    # Registered workload: its parser is built from its torch-free config (test_theta_dry_run: no torch).
    assert "mlscale run synthetic: unrecognized arguments: --epohcs" in _refusal(
        ["--epohcs", "2"], workload="synthetic"
    )
    assert "ambiguous option: --b could match" in _refusal(["--b", "2"], workload="synthetic")
    assert "argument --global-batch-size: invalid int value: 'x'" in _refusal(["--global-batch-size", "x"])
    assert "argument --out: expected one argument" in _refusal(["--epochs", "2", "--out"])
    assert "`mlscale run synthetic --help` only prints its options" in _refusal(["--he"], workload="synthetic")
    # The values of flags launch does not read are the run's to check (a point that fails on purpose).
    (point,) = _plan(["--model", "no-such-net", "--epochs", "x"], ranks=[1], workload="synthetic")
    assert point.argv[2:6] == ["--model", "no-such-net", "--epochs", "x"]

    proc = run_mlscale(
        "launch", "--system", "local", "--nodes", "1", "--out", tmp_path / "s", "--", "run", "synthetic",
        "--epochs", "2", "--image-sise", "32", check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "mlscale: error: mlscale run synthetic: unrecognized arguments: --image-sise 32"
    ], proc.stderr
    assert not (tmp_path / "s").exists()
    # The same line as the run itself gives.
    run = run_mlscale("run", "synthetic", "--epochs", "2", "--image-sise", "32", check=False)
    assert run.returncode == 2 and run.stderr == proc.stderr


def test_launch_finds_each_workloads_options_without_importing_it():
    from mlscale.bench.workload import get_workload, workload_names
    from mlscale.commands.run import workload_config

    for name in workload_names():
        assert workload_config(name) is get_workload(name).Config, name
    assert workload_config("no-such-workload") is None


def test_sweep_directory_manifest_and_not_submitted_status(tmp_path):
    sweep = tmp_path / "sweep"
    out = run_mlscale(
        "launch",
        "--system",
        "polaris-like",
        "--nodes",
        "1,2",
        "--repeats",
        "2",
        "--array",
        "--account",
        "MyProj",
        "--out",
        sweep,
        "--",
        "run",
        "synthetic",
        "--batch-size",
        "8",
    ).stdout
    assert "4 point(s) in 2 script(s)" in out
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["system"] == {
        "name": "polaris-like",
        "label": "polaris",
        "source": manifest["system"]["source"],
        "scheduler": "pbs",
        "launcher": "pals",
    }
    assert [s["path"] for s in manifest["scripts"]] == ["scripts/array-n1.sh", "scripts/array-n2.sh"]
    assert [(p["id"], p["array_index"]) for p in manifest["points"]] == [
        ("n1-r4-rep0", 0),
        ("n1-r4-rep1", 1),
        ("n2-r8-rep0", 0),
        ("n2-r8-rep1", 1),
    ]
    text = (sweep / "scripts" / "array-n2.sh").read_text()
    assert "#PBS -J 0-1\n" in text and "#PBS -A MyProj\n" in text and 'case "${PBS_ARRAY_INDEX:-}" in' in text
    assert os.access(sweep / "scripts" / "array-n2.sh", os.X_OK)
    assert {s.state for s in sweep_status(sweep)} == {"not submitted"}
    report = run_mlscale("report", sweep).stdout  # no records yet: the status table alone
    assert "Sweep points: 4 not submitted" in report and "| n2-r8-rep1 |" in report

    again = run_mlscale("launch", "--system", "local", "--nodes", "1", "--out", sweep, "--", "run", "w", check=False)
    assert again.returncode == 2 and "already exists and is not empty" in again.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-written sweep left


def test_local_sweep_runs_under_mpirun_and_reports_failures(tmp_path):
    """scheduler none: --submit runs each script here; real mpirun, real runs, real records."""
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    }
    sweep = tmp_path / "local sweep"
    run_mlscale(
        "launch", "--system", "local", "--ranks", "2", "--submit", "--out", sweep, "--", *TINY, env=env, timeout=300
    )
    states = {s.point: (s.state, s.job_id) for s in sweep_status(sweep)}
    assert states == {"n1-r2-rep0": ("ok", "local-n1-r2-rep0")}
    record = json.loads((sweep / "runs" / "n1-r2-rep0" / "record.json").read_text())
    assert (record["num_ranks"], record["launcher"], record["system"]) == (2, "openmpi", "local")
    assert len((sweep / "runs" / "n1-r2-rep0" / "ranks.jsonl").read_text().splitlines()) == 2

    # A run that never starts (a bad flag): the exit status and the error line of its log.
    bad = tmp_path / "bad"
    run_mlscale(
        "launch",
        "--system",
        "local",
        "--ranks",
        "1",
        "--submit",
        "--out",
        bad,
        "--",
        "run",
        "synthetic",
        "--model",
        "no-such-net",
        env=env,
        timeout=300,
    )
    (status,) = sweep_status(bad)
    assert status.state == "failed" and "exit status 2, no run record; n1-r1-rep0.out: " in status.detail, status
    assert "no-such-net" in status.detail


def test_failed_record_marks_its_point_failed(tmp_path):
    sweep = tmp_path / "sweep"
    run_mlscale("launch", "--system", "local", "--ranks", "1,2", "--out", sweep, "--", "run", "w")
    record = {"schema_version": 1, "run_id": "n1-r2-rep0", "status": "failed", "error": "RuntimeError: boom"}
    write_run_dir(sweep / "runs", "n1-r2-rep0", record, [])
    states = {s.point: (s.state, s.detail) for s in sweep_status(sweep)}
    assert states == {
        "n1-r1-rep0": ("not submitted", "submit scripts/n1-r1-rep0.sh"),
        "n1-r2-rep0": ("failed", "RuntimeError: boom"),
    }


def _stand_in(bin_dir: Path, name: str, output: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\n")
    path.chmod(0o755)


def test_queue_states_of_pbs_and_slurm(tmp_path, monkeypatch):
    _stand_in(
        tmp_path,
        "qstat",
        "Job Id: 101.pbs01\n    Job_Name = a\n    job_state = Q\n\n"
        "Job Id: 102[0].pbs01\n    job_state = R\nJob Id: 103.pbs01\n    job_state = F",
    )
    _stand_in(tmp_path, "squeue", "7_[2-4%2]|PENDING\n7_1|RUNNING\n8|COMPLETING\n9|PENDING")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert Pbs().states(["101.pbs01", "102[].pbs01"]) == {
        "101.pbs01": "queued",
        "102[0].pbs01": "running",
        "103.pbs01": "ended",
    }
    assert Pbs().task_id("102[].pbs01", 0) == "102[0].pbs01"
    assert Slurm().states(["7", "8"]) == {
        "7_2": "queued",
        "7_3": "queued",
        "7_4": "queued",
        "7_1": "running",
        "8": "running",
    }
    with pytest.raises(UserError, match="sbatch not found"):
        monkeypatch.setenv("PATH", str(tmp_path))
        Slurm().submit(tmp_path / "x.sh", tmp_path, tmp_path / "log")


def test_repo_has_no_stray_sweeps():
    assert not (REPO / "sweeps").exists()
