"""The results store when writers stop or die: a stopped lock holder is named within seconds and
the wait is bounded; writers killed with SIGKILL lose no finished row and leave leftovers that
`mlscale runs` lists and `--clean-staging` removes; unreadable records are skipped, and said so."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from support.records import make_run
from support.run import child_env, mlscale_cmd, run_mlscale

from mlscale.results import leftovers, store

HOLD = """
import sys, time
from mlscale.results import store
with store.write_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""

# A writer that never stops by itself: writes run directories and indexes each, printing its id
# once index_run has returned (committed), until it is killed.
VICTIM = """
import sys
from support.records import make_run
from mlscale.results import store
root, me = sys.argv[1], sys.argv[2]
i = 0
while True:
    run_dir = make_run(root, f"{me}_r{i}")
    store.index_run(root, run_dir)
    print(f"{me}_r{i}", flush=True)
    i += 1
"""


def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    env = child_env()
    env["PYTHONPATH"] += os.pathsep + str(os.path.join(os.path.dirname(__file__), ".."))  # tests/support
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, text=True, **kw)


def test_a_stopped_lock_holder_is_named_and_the_wait_is_bounded(tmp_path):
    make_run(tmp_path, "r1")  # not indexed yet: `mlscale runs` must write
    holder = _python(HOLD, tmp_path, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        os.kill(holder.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        runs = subprocess.Popen(
            mlscale_cmd("runs", tmp_path), env=child_env({"MLSCALE_INDEX_WAIT_S": "6"}),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        first = runs.stderr.readline()
        said_after = time.monotonic() - t0
        assert f"waiting for the lock held by pid {holder.pid}" in first, first
        assert said_after < 6, said_after  # ~2 s of waiting plus the interpreter's start, on a loaded machine
        rest = runs.stderr.read()
        runs.wait(30)
        took = time.monotonic() - t0
        assert runs.returncode == 2, rest
        lines = rest.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mlscale: error: ") and f"pid {holder.pid}" in lines[0], rest
        assert "MLSCALE_INDEX_WAIT_S" in lines[0] and 6 <= took < 20, took
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        os.kill(holder.pid, signal.SIGCONT)
        holder.wait()
    # The holder is gone: the kernel released its lock, the next writer goes straight through.
    t0 = time.monotonic()
    proc = run_mlscale("runs", tmp_path, "--csv")
    assert "r1" in proc.stdout and "waiting" not in proc.stderr and time.monotonic() - t0 < 15


def test_writers_killed_with_sigkill_lose_no_committed_row(tmp_path):
    victims = [_python(VICTIM, tmp_path, f"v{i}", stdout=subprocess.PIPE) for i in range(4)]
    rng = random.Random(0)
    committed: set[str] = set()
    try:
        time.sleep(3)  # past the start-up: every victim is writing
        for victim in victims:
            time.sleep(rng.uniform(0.05, 0.5))  # at any point of a write: inside the lock, mid-rename...
            victim.kill()
        for victim in victims:
            out, _ = victim.communicate(timeout=30)
            assert victim.returncode == -signal.SIGKILL
            committed |= set(out.split())
    finally:
        for victim in victims:
            victim.kill()
    assert len(committed) >= 4, committed  # the kills came while they were writing
    with sqlite3.connect(store.index_path(tmp_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        indexed = {row[0] for row in conn.execute("SELECT run_id FROM runs")}
    assert committed <= indexed
    # No lock is left held: a new writer goes straight through.
    t0 = time.monotonic()
    store.index_run(tmp_path, make_run(tmp_path, "after"))
    assert time.monotonic() - t0 < 5

    # The killed writes' hidden temporaries are listed, and removed on request.
    left = leftovers.find(tmp_path)
    proc = run_mlscale("runs", tmp_path)
    for leftover in left:
        assert f"unfinished: {leftover.path}" in proc.stderr
    proc = run_mlscale("runs", tmp_path, "--clean-staging", "--older-than", "0")
    assert leftovers.find(tmp_path) == []
    assert proc.stderr.count("removed ") == len(left)
    assert committed | {"after"} <= set(store.query(tmp_path)["run_id"])


def test_clean_staging_keeps_young_leftovers(tmp_path):
    make_run(tmp_path, "ok")
    old, young = tmp_path / ".old.staging", tmp_path / "sweep" / ".p1.tmpk2j3"
    for folder in (old, young):
        folder.mkdir(parents=True)
        (folder / "part.bin").write_bytes(b"x" * 1000)
    two_days_ago = time.time() - 48 * 3600
    for path in (old / "part.bin", old):
        os.utime(path, (two_days_ago, two_days_ago))
    proc = run_mlscale("runs", tmp_path, "--clean-staging")
    assert f"removed {old}" in proc.stderr and not old.exists()
    assert young.exists() and f"unfinished: {young}" in proc.stderr
    assert "--clean-staging" in proc.stderr.splitlines()[-1]


def test_report_and_runs_go_on_past_an_unreadable_record(tmp_path):
    for name in ("good1", "good2", "truncated", "stringly"):
        make_run(tmp_path, name)
    (tmp_path / "truncated" / "ranks.jsonl").write_text('{"rank": 0, "host": "n')
    stringly = tmp_path / "stringly" / "record.json"
    stringly.write_text(stringly.read_text().replace('"schema_version": 1', '"schema_version": "1"'))

    proc = run_mlscale("report", tmp_path)
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("mlscale: skipped ")]
    assert len(skipped) == 2, proc.stderr
    assert any("truncated/ranks.jsonl: line 1 is not valid JSON" in line for line in skipped)
    assert any("stringly/record.json: schema_version '1' is not an integer" in line for line in skipped)
    assert "good1" in proc.stdout and "good2" in proc.stdout and "stringly" not in proc.stdout

    proc = run_mlscale("runs", tmp_path, "--csv")
    assert proc.stderr.count("mlscale: skipped ") == 1 and "stringly" in proc.stderr
    for name in ("good1", "good2", "truncated"):  # runs reads no ranks.jsonl: the truncated one is listed
        assert name in proc.stdout
    assert "stringly" not in proc.stdout
