"""The results store: an SQLite index of the run directories under a results root.

`ROOT/index.sqlite` holds one row per run directory (its path relative to ROOT,
the record's identifying fields and headline numbers, and the whole record as
JSON). Run directories stay the source of truth; the index can always be rebuilt
from them (`reindex`).

Many jobs of a sweep finish at the same moment and all call `index_run`: the
database runs in WAL mode with a busy timeout, each write is one short
`BEGIN IMMEDIATE` transaction, and a write that still meets a lock is retried
with a jittered back-off, so nothing is lost.

Never imports torch: the store is read on login nodes.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from mlscale.errors import UserError
from mlscale.results.record import RECORD, load_record

INDEX = "index.sqlite"
LOCK = "index.lock"
BUSY_TIMEOUT_S = 30.0
RETRIES = 20
WAIT_S = 60.0  # default of MLSCALE_INDEX_WAIT_S
SAY_AFTER_S = 2.0

# Columns of the index besides the key, in the order `mlscale runs` prints them.
COLUMNS = (
    "run_id",
    "workload",
    "mode",
    "status",
    "system",
    "tag",
    "num_ranks",
    "num_nodes",
    "num_gpus",
    "device_type",
    "backend",
    "started_at",
    "total_time",
    "imgs_per_s",
    "test_accuracy",
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    run_dir TEXT PRIMARY KEY,
    {", ".join(COLUMNS)},
    record_mtime REAL,
    indexed_at TEXT,
    record TEXT
)
"""

T = TypeVar("T")


def index_path(root: str | os.PathLike) -> Path:
    return Path(root) / INDEX


def wait_limit_s() -> float:
    """How long a writer waits for another's lock before giving up (MLSCALE_INDEX_WAIT_S)."""
    text = os.environ.get("MLSCALE_INDEX_WAIT_S", "")
    try:
        return float(text) if text else WAIT_S
    except ValueError:
        raise UserError(f"MLSCALE_INDEX_WAIT_S={text!r}: not a number of seconds") from None


@contextmanager
def write_lock(root: str | os.PathLike) -> Iterator[None]:
    """Hold ROOT/index.lock (an flock, released by the kernel when its holder dies, SIGKILL
    included) for one write. The holder's pid is written in the file, so that a writer kept
    waiting by a holder that stopped (SIGSTOP, a hung file system) says whom it waits for after
    SAY_AFTER_S, and gives up with one line after MLSCALE_INDEX_WAIT_S instead of waiting for
    ever. SQLite's own locks cannot say who holds them."""
    path = Path(root) / LOCK
    limit = wait_limit_s()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        start, said = time.monotonic(), False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            except OSError:  # a file system without flock: SQLite's own locking still serialises writes
                break
            waited = time.monotonic() - start
            if waited >= limit:
                raise UserError(
                    f"{path}: still held by pid {_holder(path)} after {waited:.0f} s (stopped or hung?); "
                    f"end that process, or set MLSCALE_INDEX_WAIT_S to wait longer"
                )
            if not said and waited >= SAY_AFTER_S:
                print(f"mlscale: waiting for the lock held by pid {_holder(path)} on {path} "
                      f"(up to {limit:.0f} s)…", file=sys.stderr, flush=True)  # fmt: skip
                said = True
            time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


def _retry(fn: Callable[[], T]) -> T:
    """Run `fn`, retrying while SQLite reports the database busy or locked."""
    for attempt in range(RETRIES):
        try:
            return fn()
        except sqlite3.OperationalError as err:
            msg = str(err).lower()
            if ("locked" not in msg and "busy" not in msg) or attempt == RETRIES - 1:
                raise
            time.sleep(min(2.0, 0.02 * 2**attempt) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def connect(root: str | os.PathLike) -> sqlite3.Connection:
    """Open (and create if needed) ROOT/index.sqlite in WAL mode."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)

    def open_db() -> sqlite3.Connection:
        conn = sqlite3.connect(index_path(root), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            # Switching to WAL needs a moment of exclusive access; it persists in the file.
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            # Only reads on an existing index: opening it never waits for a writer's lock.
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone():
                conn.execute(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    try:
        return _retry(open_db)
    except sqlite3.DatabaseError as err:
        if isinstance(err, sqlite3.OperationalError) and "locked" in str(err).lower():
            raise UserError(f"{index_path(root)}: locked by another process ({err})") from None
        raise UserError(
            f"{index_path(root)}: not a readable results index ({err}); delete it and `mlscale runs` rebuilds it"
        ) from None


def _headline(record: dict) -> dict[str, Any]:
    """The index columns of one record."""
    epochs = record.get("epoch_stats") or []
    last = epochs[-1] if epochs else {}
    imgs = last.get("train_imgs_per_s")
    if imgs is None and record.get("inference"):
        imgs = record["inference"].get("imgs_per_s")
    row = {c: record.get(c) for c in COLUMNS}
    row["imgs_per_s"] = imgs
    row["started_at"] = _utc_iso(record.get("started_at"))
    return row


def _utc_iso(text: str | None) -> str | None:
    """Normalise an ISO time to UTC `YYYY-MM-DDTHH:MM:SS+00:00`, so that times compare as strings."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return str(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _row(root: Path, run_dir: Path) -> dict[str, Any]:
    record = load_record(run_dir)
    record.pop("run_dir", None)
    row = _headline(record)
    row["run_dir"] = _key(root, run_dir)
    row["record_mtime"] = (run_dir / RECORD).stat().st_mtime
    row["indexed_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    row["record"] = json.dumps(record)
    return row


def _key(root: Path, run_dir: Path) -> str:
    """Run directories are keyed by their path relative to the root when below it."""
    run_dir = Path(run_dir).resolve()
    try:
        return run_dir.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(run_dir)


def _write(root: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = ["run_dir", *COLUMNS, "record_mtime", "indexed_at", "record"]
    sql = f"INSERT OR REPLACE INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    values = [[row[n] for n in names] for row in rows]

    def transaction() -> None:
        with closing(connect(root)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(sql, values)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    with write_lock(root):
        _retry(transaction)


def index_run(root: str | os.PathLike, run_dir: str | os.PathLike) -> dict[str, Any]:
    """Add (or refresh) one run directory in ROOT's index; returns its index row.

    Safe to call from many processes at once. The runner calls it after writing
    a run directory.
    """
    row = _row(Path(root), Path(run_dir))
    _write(Path(root), [row])
    return row


def _run_dirs_below(root: Path) -> list[Path]:
    # Hidden directories are half-written runs (write_run_dir's temporaries).
    return sorted(
        p.parent for p in root.rglob(RECORD) if not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def reindex(root: str | os.PathLike, skipped: list[str] | None = None) -> int:
    """Index every run directory below ROOT that is new or changed since it was indexed,
    and drop index rows whose directory is gone. Returns the number of rows written; the
    reason each unreadable record was left out is added to `skipped`."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such results directory")
    with closing(connect(root)) as conn:
        known = dict(_retry(lambda: conn.execute("SELECT run_dir, record_mtime FROM runs").fetchall()))
    rows, seen = [], set()
    for run_dir in _run_dirs_below(root):
        key = _key(root, run_dir)
        seen.add(key)
        if known.get(key) != (run_dir / RECORD).stat().st_mtime:
            try:
                rows.append(_row(root, run_dir))
            except UserError as err:  # not a readable record: leave it out of the index, and say so
                if skipped is not None:
                    skipped.append(str(err))
    _write(root, rows)
    gone = [k for k in known if k not in seen and not os.path.isabs(k)]
    if gone:

        def delete() -> None:
            with closing(connect(root)) as c:
                c.executemany("DELETE FROM runs WHERE run_dir = ?", [(k,) for k in gone])

        with write_lock(root):
            _retry(delete)
    return len(rows)


def query(
    root: str | os.PathLike,
    workload: str | None = None,
    system: str | None = None,
    ranks: Iterable[int] | None = None,
    since: str | None = None,
    tag: str | None = None,
) -> pd.DataFrame:
    """Index rows matching every filter given, oldest first (a pandas table)."""
    where, params = [], []
    for col, value in (("workload", workload), ("system", system), ("tag", tag)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    ranks = list(ranks or [])
    if ranks:
        where.append(f"num_ranks IN ({', '.join('?' * len(ranks))})")
        params.extend(ranks)
    if since is not None:
        where.append("started_at >= ?")
        params.append(parse_since(since))
    sql = f"SELECT run_dir, {', '.join(COLUMNS)} FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started_at, run_dir"
    with closing(connect(root)) as conn:
        return _retry(lambda: pd.read_sql_query(sql, conn, params=params))


def load_indexed_records(root: str | os.PathLike, **filters: Any) -> list[dict]:
    """The full records of the matching runs, with `run_dir` set to their directory."""
    table = query(root, **filters)
    keys = list(table["run_dir"])
    if not keys:
        return []
    with closing(connect(root)) as conn:
        rows = dict(
            conn.execute(f"SELECT run_dir, record FROM runs WHERE run_dir IN ({', '.join('?' * len(keys))})", keys)
        )
    records = []
    for key in keys:
        record = json.loads(rows[key])
        record["run_dir"] = str(Path(root) / key) if not os.path.isabs(key) else key
        records.append(record)
    return records


def parse_since(text: str) -> str:
    """ISO date or date-time -> the UTC ISO string records are compared with."""
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"--since {text}: not an ISO date (e.g. 2026-11-24 or 2026-11-24T01:00)") from None
    return _utc_iso(text)
