"""Time limits and preemption: SIGUSR1/SIGTERM stop every rank at one step boundary, leave a checkpoint and a
"preempted" record and exit 75; `--resume` continues bit for bit. Real runs, 1 rank and `mpirun -np 2`."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest
from support.run import child_env, mlscale_cmd, run_mlscale

# The example workload: 16 steps per epoch, 3 epochs, seconds on a CPU.
EXAMPLE = ["run", "example", "--points", "512", "--batch-size", "32", "--epochs", "3", "--no-progress"]
EX_PREEMPTED = 75


def _record(run_dir) -> dict:
    return json.loads((run_dir / "record.json").read_text())


def _losses(record: dict) -> list:
    return [(e["epoch"], e["train_loss"], e["test_loss"], e["test_metrics"]) for e in record["epoch_stats"]]


def _preempt(root, run_id, at: str, ranks=None, extra=()):
    proc = run_mlscale(*EXAMPLE, *extra, "--out", root, "--run-id", run_id, ranks=ranks, check=False,
                       env={"MLSCALE_TEST_SIGNAL_AT": at})  # fmt: skip
    assert proc.returncode == EX_PREEMPTED, proc.stderr[-3000:]
    return _record(root / run_id)


@pytest.mark.parametrize("backend", ["ddp", "mpi"])
def test_two_ranks_stop_together_and_resume_bit_for_bit(tmp_path, backend):
    extra = ["--backend", backend]
    # Rank 1 alone gets the signal after 21 steps (epoch 2, step 5): both ranks must stop there.
    rec = _preempt(tmp_path, "cut", "1:21", ranks=2, extra=extra)
    assert rec["status"] == "preempted" and rec["num_ranks"] == 2
    pre = rec["preemption"]
    assert (pre["signal"], pre["epoch"], pre["step"], pre["global_step"]) == ("SIGUSR1", 2, 5, 21)
    assert pre["checkpoint"] == "checkpoint" and pre["checkpoint_seconds"] > 0
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoint").iterdir()) == ["model.pt", "position.json",
                                                                                   "ranks.pt"]  # fmt: skip
    first, partial = rec["epoch_stats"]
    assert first["test_loss"] is not None and "partial" not in first
    assert partial["partial"] and partial["train_steps"] == 5 and partial["train_samples"] == 5 * 2 * 32
    ranks = [json.loads(line) for line in (tmp_path / "cut" / "ranks.jsonl").read_text().splitlines()]
    assert [r["phases"]["forward"]["count"] for r in ranks] == [21, 21]  # no rank took a step more
    assert not list(tmp_path.glob(".*staging"))

    proc = run_mlscale(*EXAMPLE, *extra, "--out", tmp_path, "--run-id", "cut", "--resume", "auto", ranks=2)
    assert "resuming" in proc.stderr
    run_mlscale(*EXAMPLE, *extra, "--out", tmp_path, "--run-id", "whole", ranks=2)
    joined, whole = _record(tmp_path / "cut"), _record(tmp_path / "whole")
    assert joined["status"] == "ok" and not (tmp_path / "cut" / "checkpoint").exists()
    assert _losses(joined) == _losses(whole)  # exactly: == on floats
    assert [s["status"] for s in joined["segments"]] == ["preempted", "ok"]
    assert [(e["epoch"], e["segment"]) for e in joined["epoch_stats"]] == [(1, 1), (2, 2), (3, 2)]
    resumed = joined["epoch_stats"][1]
    assert resumed["resumed_at_step"] == 5 and resumed["train_samples"] == 11 * 2 * 32
    assert [p["train_steps"] for p in resumed["earlier_parts"]] == [5]
    assert joined["total_time"] == pytest.approx(sum(s["total_time"] for s in joined["segments"]))


def test_one_rank_sigterm_twice_then_resume_run_dir(tmp_path):
    rec = _preempt(tmp_path, "cut", "0:3:SIGTERM")
    assert rec["preemption"]["signal"] == "SIGTERM" and rec["preemption"]["global_step"] == 3
    # Preempted again, inside the same epoch as before, then resumed to the end: three segments.
    proc = run_mlscale(*EXAMPLE, "--resume", tmp_path / "cut", check=False, env={"MLSCALE_TEST_SIGNAL_AT": "0:9"})
    assert proc.returncode == EX_PREEMPTED, proc.stderr[-3000:]
    assert _record(tmp_path / "cut")["preemption"]["global_step"] == 9
    run_mlscale(*EXAMPLE, "--resume", tmp_path / "cut")
    run_mlscale(*EXAMPLE, "--out", tmp_path, "--run-id", "whole")
    joined = _record(tmp_path / "cut")
    assert _losses(joined) == _losses(_record(tmp_path / "whole"))
    assert len(joined["segments"]) == 3
    assert [p["train_steps"] for p in joined["epoch_stats"][0]["earlier_parts"]] == [3, 6]
    assert [p["segment"] for p in joined["epoch_stats"][0]["earlier_parts"]] == [1, 2]


def test_resume_auto_without_a_run_starts_afresh(tmp_path):
    run_mlscale(*EXAMPLE, "--out", tmp_path, "--run-id", "fresh", "--resume", "auto")
    rec = _record(tmp_path / "fresh")
    assert rec["status"] == "ok" and "segments" not in rec


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resume", "{tmp}/nope"], "nope: --resume: no such run directory"),
        (["--resume", "{tmp}/done"], "status is 'ok', not 'preempted'"),
        (["--resume", "auto", "--out", "{tmp}"], "--resume auto needs --run-id"),
        (["--resume", "auto", "--out", "{tmp}", "--run-id", "done"], "already exists"),
        (["--resume", "{tmp}/cut", "--batch-size", "16"], "--batch-size 16 differs from the run's 32"),
        (["--resume", "{tmp}/cut", "--epochs", "1"], "--epochs 1 ends before"),
        (["--resume", "{tmp}/broken"], "ranks.pt: --resume: not a readable checkpoint"),
    ],
)
def test_bad_resume_is_one_line_exit_2(tmp_path_factory, args, message):
    tmp = _bad_resume_root(tmp_path_factory)
    before = sorted(p.name for p in tmp.iterdir())
    argv = [*EXAMPLE, *(a.format(tmp=tmp) for a in args)]
    proc = run_mlscale(*argv, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    if "broken" not in args[1]:  # found before the run starts: nothing but the error
        assert len(lines) == 1
    assert message in lines[-1] and lines[-1].startswith("mlscale: error: ") and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp.iterdir()) == before  # nothing written, nothing left behind


_ROOTS: dict = {}


def _bad_resume_root(factory):
    """One results root for every bad-resume case: an ok run, a preempted one and one with a torn checkpoint."""
    if "root" not in _ROOTS:
        root = factory.mktemp("resume-bad")
        run_mlscale(*EXAMPLE, "--epochs", "1", "--out", root, "--run-id", "done")
        _preempt(root, "cut", "0:20")  # epoch 2
        _preempt(root, "broken", "0:2")
        ranks = root / "broken" / "checkpoint" / "ranks.pt"
        ranks.write_bytes(ranks.read_bytes()[:100])
        _ROOTS["root"] = root
    return _ROOTS["root"]


def test_ranks_must_match_the_checkpoint(tmp_path):
    _preempt(tmp_path, "cut", "0:2")
    proc = run_mlscale(*EXAMPLE, "--resume", tmp_path / "cut", ranks=2, check=False)
    assert proc.returncode != 0
    assert "the checkpoint was written by 1 rank(s); this launch has 2" in proc.stderr
    assert _record(tmp_path / "cut")["status"] == "preempted"  # left as it was, resumable


def _wait_for(stream, needle: str, seen: list[str], event: threading.Event) -> None:
    for line in stream:
        seen.append(line)
        if needle in line:
            event.set()
    event.set()


def test_sigusr1_to_mpirun_stops_both_ranks_within_10s(tmp_path):
    """The real path: a signal to the launcher, forwarded by Open MPI to every rank."""
    argv = [*EXAMPLE, "--epochs", "1000", "--out", tmp_path, "--run-id", "sig"]
    proc = subprocess.Popen(mlscale_cmd(*argv, ranks=2), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=child_env())  # fmt: skip
    seen: list[str] = []
    started = threading.Event()
    reader = threading.Thread(target=_wait_for, args=(proc.stderr, "epoch 2:", seen, started), daemon=True)
    reader.start()
    try:
        assert started.wait(300), "training never reached epoch 2"
        assert proc.poll() is None, "".join(seen)[-3000:]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGUSR1)
        rc = proc.wait(timeout=120)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == EX_PREEMPTED, "".join(seen)[-3000:]
    assert elapsed < 10, f"{elapsed:.1f}s from SIGUSR1 to exit"
    rec = _record(tmp_path / "sig")
    assert rec["status"] == "preempted" and rec["preemption"]["signal"] == "SIGUSR1"
    assert (tmp_path / "sig" / "checkpoint" / "ranks.pt").is_file()
