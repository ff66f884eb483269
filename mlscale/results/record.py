"""Run directories: writing them atomically and reading them back.

A run directory holds:

- `record.json` — the whole run (schema below), written by rank 0;
- `ranks.jsonl` — one JSON object per rank: its host, device, per-epoch times (with
  `phase_totals`, each phase's seconds summed over the epoch's steps) and per-phase step statistics;
- `run.log` — every rank's log lines, rank-prefixed;
- optional extra files a workload or a later stage adds (`mllog.txt`, predictions).

`record.json` keys (schema_version 1). Times are seconds; a time "of the run"
is the slowest rank's; samples are global (all ranks):

    schema_version, run_id, workload, mode, status ("ok" | "failed" | "preempted"), error,
    system, tag, started_at, finished_at (ISO 8601, UTC),
    launcher, backend, device_type ("cpu" | "cuda"), num_ranks, num_nodes,
    num_gpus, hosts, versions{...}, git_revision,
    config{run{...}, workload{...}}, batch_size (per rank), global_batch_size,
    epochs (count), learning_rate, accuracy_metric, accuracy_caption,
    setup_time, total_time,
    epoch_stats: [{epoch, wall_time, train_time, test_time, train_samples,
                   test_samples, train_imgs_per_s, test_imgs_per_s,
                   train_loss, test_loss, train_metrics{}, test_metrics{}}],
    train_loss, test_loss, train_accuracy, test_accuracy (last epoch),
    inference: {total_time, samples, imgs_per_s} | null,
    iotest: {...} | null,
    phases: {phase: {mean, median, p95, min, max,          (per-step seconds, all ranks' steps)
                     rank_mean_min, rank_mean_max, slowest_rank}},
    workload_info{...}

A run stopped by SIGTERM/SIGUSR1 (status "preempted", docs/reliability.md) also has
`preemption` {signal, epoch, step, global_step, checkpoint, checkpoint_seconds, stop_seconds}
and a `checkpoint/` directory; a preempted or resumed run has `segments`
[{segment, status, started_at, finished_at, job_id, hosts, setup_time, total_time, preemption,
epochs}], and each epoch a `segment`. An epoch stopped part-way has `partial`, `train_steps`
and `stopped_at_step`; one resumed part-way has `resumed_at_step` (its times and samples cover
that segment's steps only; its losses the whole epoch) and `earlier_parts` [the stopped parts].
setup_time and total_time of a resumed run are sums over its segments.

This module is read by report tools on login nodes: it never imports torch.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlscale.errors import UserError
from mlscale.fileio import atomic_dir, atomic_write

SCHEMA_VERSION = 1
RECORD = "record.json"
RANKS = "ranks.jsonl"
LOG = "run.log"


def write_run_dir(
    root: str | os.PathLike,
    run_id: str,
    record: dict,
    ranks: Iterable[dict],
    log_text: str = "",
    extra_files: dict[str, str | bytes] | None = None,
    replace: bool = False,
) -> Path:
    """Write a complete run directory, or nothing: files go to a hidden
    temporary directory first, which is renamed into place at the end.
    `replace`: an existing run directory (a resumed run's earlier part) is swapped out only then."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = dest = root / run_id
    if final.exists():
        if not replace:
            raise UserError(f"{final}: run directory already exists; choose another --run-id")
        dest = root / f".{run_id}.next"
        shutil.rmtree(dest, ignore_errors=True)
    with atomic_dir(dest) as tmp:
        (tmp / RECORD).write_text(json.dumps(record, indent=2, sort_keys=False, default=_jsonable) + "\n")
        with open(tmp / RANKS, "w") as fh:
            for entry in ranks:
                fh.write(json.dumps(entry, default=_jsonable) + "\n")
        (tmp / LOG).write_text(log_text)
        for name, content in (extra_files or {}).items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else content.encode())
    if dest != final:
        old = root / f".{run_id}.previous"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(dest, final)
        shutil.rmtree(old, ignore_errors=True)
    return final


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace one file atomically (`mlscale.fileio.atomic_write`; kept for its importers)."""
    atomic_write(path, text)


def _jsonable(value: Any):
    # numpy scalars and arrays, Paths: make them plain JSON.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_record(run_dir: str | os.PathLike) -> dict:
    """Read one run directory's record.json, with a one-line error when it is not one."""
    run_dir = Path(run_dir)
    path = run_dir / RECORD
    if not run_dir.exists():
        raise UserError(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run directory (no {RECORD})")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except (UnicodeDecodeError, OSError) as err:
        raise UserError(f"{path}: cannot be read ({err})") from None
    if not isinstance(record, dict) or "schema_version" not in record:
        raise UserError(f"{path}: not an mlscale run record (no schema_version)")
    version = record["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserError(f"{path}: schema_version {version!r} is not an integer")
    if version > SCHEMA_VERSION:
        raise UserError(f"{path}: record schema {version} is newer than this mlscale reads")
    if not isinstance(record.get("run_id"), str) or not record["run_id"]:
        raise UserError(f"{path}: no run_id")
    record.setdefault("run_dir", str(run_dir))
    return record


def load_ranks(run_dir: str | os.PathLike) -> list[dict]:
    """One run directory's ranks.jsonl, with a one-line error naming the line that is not a rank."""
    path = Path(run_dir) / RANKS
    if not path.is_file():
        raise UserError(f"{run_dir}: no {RANKS}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError) as err:
        raise UserError(f"{path}: cannot be read ({err})") from None
    ranks = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: line {number} is not valid JSON ({err.msg}; truncated?)") from None
        if not isinstance(entry, dict):
            raise UserError(f"{path}: line {number} is not a rank's entry (a JSON object)")
        ranks.append(entry)
    return ranks


def find_run_dirs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Run directories named directly, or found anywhere below the given paths."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise UserError(f"{p}: no such run directory")
        if (p / RECORD).is_file():
            found.append(p)
            continue
        below = sorted(
            r.parent for r in p.rglob(RECORD) if not any(part.startswith(".") for part in r.parts[len(p.parts) :])
        )
        if not below:
            raise UserError(f"{p}: no run records (record.json) found in it")
        found.extend(below)
    return list(dict.fromkeys(found))


def load_records(paths: Iterable[str | os.PathLike]) -> list[dict]:
    return [load_record(d) for d in find_run_dirs(paths)]


def load_readable_records(paths: Iterable[str | os.PathLike], ranks: bool = True) -> tuple[list[dict], list[str]]:
    """The records that can be read (and, with `ranks`, whose ranks.jsonl can), and one line for each
    run directory that cannot: a report goes on with the rest and says what it skipped. With
    nothing readable but something skipped, the (first) reason is the error."""
    records, skipped = [], []
    for run_dir in find_run_dirs(paths):
        try:
            record = load_record(run_dir)
            if ranks and (run_dir / RANKS).exists():
                load_ranks(run_dir)
        except UserError as err:
            skipped.append(str(err))
            continue
        records.append(record)
    if skipped and not records:
        raise UserError(skipped[0] if len(skipped) == 1 else f"none of the {len(skipped)} run records could be "
                        f"read; the first: {skipped[0]}")  # fmt: skip
    return records, skipped
