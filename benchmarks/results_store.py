"""Results store under a burst of concurrent writers: mlscale's index_run against a plain SQLite baseline.

Many jobs of a sweep finish at once and each indexes its run. The baseline is what
one writes first: sqlite3.connect with the default rollback journal and 5 s
timeout, one INSERT per run, no retry. Both index the same run directories from
WRITERS processes released together; the script prints rows written, rows lost
(writes that raised), wall time, and the ratio of throughputs.

    python benchmarks/results_store.py [--writers 32] [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.records import make_run  # noqa: E402

from mlscale.results import store  # noqa: E402


def baseline_index(db: Path, run_dir: Path) -> None:
    record = json.loads((run_dir / "record.json").read_text())
    conn = sqlite3.connect(db)  # rollback journal, 5 s busy timeout: the defaults
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS runs (run_dir TEXT PRIMARY KEY, workload, record TEXT)")
        conn.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", (run_dir.name, record["workload"], json.dumps(record))
        )
        conn.commit()
    finally:
        conn.close()


def writer(kind: str, root: str, dirs: list[str], barrier, errors) -> None:
    barrier.wait()
    for d in dirs:
        try:
            if kind == "mlscale":
                store.index_run(root, d)
            else:
                baseline_index(Path(root) / "baseline.sqlite", Path(d))
        except sqlite3.Error:
            errors.put(1)


def burst(kind: str, root: Path, run_dirs: list[Path], writers: int) -> tuple[int, int, float]:
    ctx = mp.get_context("fork")
    barrier, errors = ctx.Barrier(writers + 1), ctx.Queue()
    shares = [[str(d) for d in run_dirs[i::writers]] for i in range(writers)]
    procs = [ctx.Process(target=writer, args=(kind, str(root), s, barrier, errors)) for s in shares]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    lost = 0
    while not errors.empty():
        lost += errors.get()
    db = root / ("index.sqlite" if kind == "mlscale" else "baseline.sqlite")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    return rows, lost, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--runs", type=int, default=10, help="runs per writer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dirs = [make_run(root, f"run{i:04d}", ranks=1 + i % 8) for i in range(args.writers * args.runs)]
        results = {kind: burst(kind, root, dirs, args.writers) for kind in ("baseline", "mlscale")}
    total = args.writers * args.runs
    for kind, (rows, lost, elapsed) in results.items():
        print(f"{kind:9s}: {rows}/{total} rows, {lost} writes failed, {elapsed:.2f} s, {rows / elapsed:.0f} rows/s")
    (b_rows, _, b_t), (m_rows, _, m_t) = results["baseline"], results["mlscale"]
    ratio = (m_rows / m_t) / (b_rows / b_t) if b_rows else float("nan")
    print(f"ratio mlscale/baseline: rows kept {m_rows / max(b_rows, 1):.2f}x, throughput {ratio:.2f}x")


if __name__ == "__main__":
    main()
