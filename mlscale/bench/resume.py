"""Checkpoints of preempted runs and `--resume`: finding one, writing one, joining the records.

A preempted run directory holds record.json (status "preempted") and checkpoint/:

    position.json   where training stopped: epoch, step of it, steps in all, ranks, workload, engine
    (engine files)  model, optimizer, loss scaler and every rank's RNG and loader state
                    (e.g. mlscale/engines/torch/checkpoint.py)

`--resume RUN_DIR` continues such a run and, when done (or preempted again), replaces RUN_DIR by one
record of all its segments. `--resume auto` does so when --out/--run-id holds a preempted run, and
starts afresh when there is none: the form job scripts use, so that a requeued job continues.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from mlscale.bench.config import RunConfig
from mlscale.bench.engine import Engine
from mlscale.bench.preempt import ResumePoint, TrainControl
from mlscale.errors import UserError
from mlscale.fileio import atomic_write
from mlscale.launch.comm import Communicator
from mlscale.results.record import load_record

CHECKPOINT = "checkpoint"
POSITION = "position.json"


@dataclass
class Previous:
    """The preempted run a resumed run continues."""

    run_dir: Path
    record: dict
    position: dict

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT


def resolve(run: RunConfig, workload: str) -> tuple[RunConfig, Previous | None]:
    """The run's --out/--run-id and the run it continues, from --resume; same answer on every rank."""
    if not run.resume:
        return run, None
    if run.resume == "auto":
        if not run.run_id:
            raise UserError("--resume auto needs --run-id (the run directory it looks for under --out)")
        run_dir = Path(run.out) / run.run_id
        if not run_dir.exists():
            return run, None  # nothing to continue: a first start
        record = load_record(run_dir)
        if record.get("status") != "preempted":
            raise UserError(f"{run_dir}: run directory already exists (status {record.get('status')!r}, "
                            "not preempted); choose another --run-id")  # fmt: skip
    else:
        run_dir = Path(run.resume)
        if not run_dir.is_dir():
            raise UserError(f"{run_dir}: --resume: no such run directory")
        record = load_record(run_dir)
        if record.get("status") != "preempted":
            raise UserError(f"{run_dir}: --resume: the run's status is {record.get('status')!r}, not 'preempted'")
        if run.run_id and run.run_id != run_dir.name:
            raise UserError(f"--run-id {run.run_id}: a resumed run keeps its run id ({run_dir.name})")
    position_file = run_dir / CHECKPOINT / POSITION
    try:
        position = json.loads(position_file.read_text())
    except FileNotFoundError:
        raise UserError(f"{position_file}: --resume: the run has no checkpoint") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{position_file}: --resume: unreadable ({err})") from None
    if position.get("workload") != workload:
        raise UserError(f"{run_dir}: --resume: a checkpoint of workload {position.get('workload')!r}, not {workload!r}")
    run = dataclasses.replace(run, out=str(run_dir.parent), run_id=run_dir.name)
    return run, Previous(run_dir, record, position)


def check_fits(previous: Previous, run: RunConfig, comm: Communicator, engine_cls: type[Engine]) -> None:
    """Collective-free checks every rank makes alike, so all of them fail together."""
    where = previous.run_dir
    if not engine_cls.supports_checkpoints:
        raise UserError(f"{where}: --resume: the {engine_cls.name} engine does not support training checkpoints")
    if previous.position["num_ranks"] != comm.size:
        raise UserError(f"{where}: --resume: the checkpoint was written by {previous.position['num_ranks']} "
                        f"rank(s); this launch has {comm.size}")  # fmt: skip
    before = previous.record.get("config", {}).get("run", {})
    for key in ("batch_size", "global_batch_size", "seed", "mode"):
        if key in before and before[key] != getattr(run, key):
            flag = "--" + key.replace("_", "-")
            raise UserError(f"{where}: --resume: {flag} {getattr(run, key)} differs from the run's {before[key]}")
    if run.epochs < previous.position["epoch"]:
        raise UserError(f"{where}: --resume: --epochs {run.epochs} ends before the checkpoint's epoch "
                        f"{previous.position['epoch']}")  # fmt: skip


def load(engine: Engine, previous: Previous, comm: Communicator) -> ResumePoint:
    """Every rank: restore model, optimizer and scaler; this rank's place to continue from."""
    states = engine.load_checkpoint(previous.checkpoint)
    pos = previous.position
    return ResumePoint(epoch=pos["epoch"], step=pos["step"], global_step=pos["global_step"],
                       rank_state=states[comm.rank])  # fmt: skip


def write_checkpoint(engine: Engine, control: TrainControl, rank_state: dict | None, staging: Path) -> dict:
    """Collective: gather every rank's state; rank 0 writes the checkpoint into the staging directory
    (so that it lands in the run directory with the record). Returns facts for the record."""
    comm = engine.ctx.comm
    t0 = time.perf_counter()
    states = comm.gather(rank_state)
    facts = {"epoch": control.epoch, "step": control.epoch_step, "global_step": control.global_step}
    if comm.rank != 0:
        return facts
    if not engine.supports_checkpoints:
        engine.ctx.log.warning("the %s engine cannot write training checkpoints; no --resume for this run",
                               engine.name)  # fmt: skip
        return {**facts, "checkpoint": None}
    directory = staging / CHECKPOINT
    engine.save_checkpoint(directory, states)
    position = {**facts, "num_ranks": comm.size, "workload": engine.workload.name, "engine": engine.name}
    atomic_write(directory / POSITION, json.dumps(position, indent=2) + "\n")
    return {**facts, "checkpoint": CHECKPOINT, "checkpoint_seconds": time.perf_counter() - t0}


def _segment(record: dict, number: int) -> dict:
    keys = ("status", "started_at", "finished_at", "job_id", "hosts", "setup_time", "total_time", "preemption")
    return {"segment": number, **{k: record.get(k) for k in keys},
            "epochs": [e["epoch"] for e in record.get("epoch_stats", [])]}  # fmt: skip


def mark_segment(record: dict, previous: Previous | None) -> dict:
    """A preempted or resumed run's record: its segments (earlier ones first) and each epoch's
    segment. A split epoch keeps the times of its last part; its earlier parts are beside them."""
    earlier = previous.record if previous else {}
    segments = list(earlier.get("segments", []))
    number = len(segments) + 1
    for entry in record["epoch_stats"]:
        entry["segment"] = number
    record["segments"] = [*segments, _segment(record, number)]
    if not previous:
        return record
    resumed_epoch = previous.position["epoch"]
    done = [e for e in earlier.get("epoch_stats", []) if e["epoch"] < resumed_epoch]
    split = [e for e in earlier.get("epoch_stats", []) if e["epoch"] == resumed_epoch]
    if split and record["epoch_stats"] and record["epoch_stats"][0]["epoch"] == resumed_epoch:
        part = split[0]
        parts = [*part.pop("earlier_parts", []), part]
        record["epoch_stats"][0]["earlier_parts"] = parts
    record["epoch_stats"] = done + record["epoch_stats"]
    record["started_at"] = earlier.get("started_at", record["started_at"])
    for key in ("setup_time", "total_time"):  # measured work of all segments, without the gaps between
        record[key] = sum(s.get(key) or 0.0 for s in record["segments"])
    return record
