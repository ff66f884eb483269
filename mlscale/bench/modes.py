"""The three modes of a run, framework-neutral: train (epochs of train and test passes),
inference (one timed pass) and iotest (read and distribute data only).

Each mode asks the engine for timed steps and the workload for its data and its
evaluation hooks, and returns global figures (the same on every rank) plus this
rank's own. Step times per phase are appended to `Steps`, for the per-rank tables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from mlscale.bench import faults, stats
from mlscale.bench.engine import Engine
from mlscale.bench.gcpolicy import GcPolicy
from mlscale.bench.logs import fmt, rate
from mlscale.bench.preempt import TrainControl, sums_state
from mlscale.bench.timing import EVAL_PHASES, PHASES, StepTimer
from mlscale.bench.workload import Workload


@dataclass
class Steps:
    """This rank's step times per phase, one dict per timed pass."""

    train: list[dict[str, np.ndarray]] = field(default_factory=list)
    eval: list[dict[str, np.ndarray]] = field(default_factory=list)


def _evaluate(engine: Engine, workload: Workload, data, steps: int, timer, desc: str, split: str):
    """One evaluation pass: eval_start, timed steps, sync. Returns (accumulator, seconds)."""
    workload.eval_start(split)
    t0 = time.perf_counter()
    acc = engine.eval_steps(data, steps, timer, desc=desc, split=split)
    engine.sync()
    return acc, time.perf_counter() - t0


@dataclass
class TrainResult:
    epochs: list[dict] = field(default_factory=list)  # global figures per epoch
    rank_epochs: list[dict] = field(default_factory=list)  # this rank's
    bench_start: float = 0.0  # when the timed part began (after warm-up)
    rank_state: dict | None = None  # when stopped by a signal: what this rank's checkpoint needs


def train(engine: Engine, workload: Workload, observers, gc_policy: GcPolicy, steps_out: Steps,
          control: TrainControl) -> TrainResult:  # fmt: skip
    ctx = engine.ctx
    run, comm, log = ctx.run, ctx.comm, ctx.log
    result = TrainResult(bench_start=time.perf_counter())
    train_data, test_data = workload.build_data("train"), workload.build_data("test")
    train_steps = stats.common_steps(comm, train_data, run.max_steps, "train")
    test_steps = stats.common_steps(comm, test_data, run.max_steps, "test")
    if control.resume:  # no warm-up: its steps would change the restored weights
        engine.set_data_state(test_data, control.resume.rank_state["test_data"])
    elif run.warmup_steps:
        engine.train_steps(train_data, min(run.warmup_steps, train_steps), StepTimer(), desc="warm-up")
        engine.sync()
        comm.barrier()
        result.bench_start = time.perf_counter()
    for epoch in range(control.first_epoch, run.epochs + 1):
        faults.maybe_fail(comm.rank, f"epoch{epoch}")
        workload.epoch_start(epoch)
        for obs in observers:
            obs.epoch_start(epoch)
        timer, test_timer = engine.make_timer(PHASES), engine.make_timer(EVAL_PHASES)
        control.start_epoch(epoch, engine, train_data)
        t0 = time.perf_counter()
        train_acc = engine.train_steps(train_data, train_steps, timer, desc=f"epoch {epoch} train", control=control)
        engine.sync()
        train_time = time.perf_counter() - t0
        if control.stopped:
            _stopped(engine, workload, control, result, timer, train_acc, train_time, test_data)
            steps_out.train.append(timer.epoch_end())
            break
        desc = f"epoch {epoch} test"
        test_acc, test_time = _evaluate(engine, workload, test_data, test_steps, test_timer, desc, "test")
        train_phases = timer.epoch_end()
        steps_out.train.append(train_phases)
        steps_out.eval.append(test_timer.epoch_end())
        mine = {
            "epoch": epoch,
            "wall_time": train_time + test_time,
            "train_time": train_time,
            "test_time": test_time,
            "train_samples": train_acc.samples - control.restored_samples,
            "test_samples": test_acc.samples,
            "train_steps": train_steps - (control.resume.step if control.resuming(epoch) else 0),
            # this epoch's seconds per phase, summed over its steps: a phase's share of a step per epoch
            # (e.g. data_wait with and without a cache)
            "phase_totals": {phase: float(t.sum()) for phase, t in train_phases.items()},
            **_resumed_at(control, epoch),
        }
        result.rank_epochs.append(mine)
        test_metrics = {**test_acc.reduce(comm), **workload.eval_end("test")}
        epoch_stats = stats.epoch_stats(comm, mine, train_acc.reduce(comm), test_metrics, workload.accuracy_metric)
        result.epochs.append({**epoch_stats, **_resumed_at(control, epoch)})
        for obs in observers:
            obs.epoch_end(epoch, epoch_stats)
        gc_policy.between_epochs()
        log.info(
            "epoch %d: train %.3fs (%s), test %.3fs, train loss %s, test loss %s",
            epoch,
            epoch_stats["train_time"],
            rate(epoch_stats["train_imgs_per_s"], "samples/s"),
            epoch_stats["test_time"],
            fmt(epoch_stats["train_loss"]),
            fmt(epoch_stats["test_loss"]),
        )
    return result


def _resumed_at(control: TrainControl, epoch: int) -> dict:
    """A resumed epoch's times and samples cover only the steps from this step on."""
    return {"resumed_at_step": control.resume.step} if control.resuming(epoch) else {}


def _stopped(engine: Engine, workload: Workload, control: TrainControl, result: TrainResult, timer, train_acc,
             train_time: float, test_data) -> None:  # fmt: skip
    """A signal stopped the epoch's pass: its part so far joins the results (no test pass), and this
    rank's state for the checkpoint is kept."""
    comm, epoch = engine.ctx.comm, control.epoch
    done = control.epoch_step - (control.resume.step if control.resuming(epoch) else 0)
    mine = {"epoch": epoch, "wall_time": train_time, "train_time": train_time, "test_time": 0.0,
            "train_samples": train_acc.samples - control.restored_samples, "test_samples": 0,
            "train_steps": done, "partial": True, "stopped_at_step": control.epoch_step,
            **_resumed_at(control, epoch)}  # fmt: skip
    result.rank_epochs.append(mine)
    epoch_stats = stats.epoch_stats(comm, mine, train_acc.reduce(comm), {}, workload.accuracy_metric)
    partial = {k: mine[k] for k in ("train_steps", "partial", "stopped_at_step")}
    result.epochs.append({**epoch_stats, **partial, **_resumed_at(control, epoch)})
    if engine.supports_checkpoints:
        result.rank_state = {
            "epoch_start": control.epoch_start_state,
            "rng": engine.rng_state(),
            "sums": sums_state(train_acc),
            "test_data": engine.data_state(test_data),
        }
    engine.ctx.log.info("epoch %d: stopped by a signal after step %d of the epoch", epoch, control.epoch_step)


def inference(engine: Engine, workload: Workload, steps_out: Steps) -> dict:
    """One timed inference pass; the record's inference section, with this rank's under "local"."""
    comm, log = engine.ctx.comm, engine.ctx.log
    data = workload.build_data("inference")
    steps = stats.common_steps(comm, data, engine.ctx.run.max_steps, "inference")
    timer = engine.make_timer(EVAL_PHASES)
    comm.barrier()
    acc, elapsed = _evaluate(engine, workload, data, steps, timer, "inference", "inference")
    steps_out.eval.append(timer.epoch_end())
    facts = workload.eval_end("inference")
    result = stats.global_rate(comm, elapsed, acc.samples)
    result.update(facts or {})
    result["local"] = {"time": elapsed, "samples": acc.samples}
    log.info(
        "inference: %d samples in %.3fs (%s)",
        result["samples"],
        result["total_time"],
        rate(result["imgs_per_s"], "samples/s"),
    )
    return result


def iotest(engine: Engine, workload: Workload, steps_out: Steps) -> dict:
    """Read (and move to the device) the training data only; the record's iotest section."""
    comm, log = engine.ctx.comm, engine.ctx.log
    data = workload.build_data("train")
    steps = stats.common_steps(comm, data, engine.ctx.run.max_steps, "train")
    timer = engine.make_timer(("data_wait", "h2d"))
    comm.barrier()
    t0 = time.perf_counter()
    samples, nbytes = engine.io_steps(data, steps, timer)
    engine.sync()
    elapsed = time.perf_counter() - t0
    steps_out.train.append(timer.epoch_end())
    result = stats.global_rate(comm, elapsed, samples)
    io_stats = workload.io_stats()
    for key in sorted(io_stats):  # same keys on every rank, same order of collectives
        result[key] = comm.allreduce(float(io_stats[key]), "sum")
    total_bytes = comm.allreduce(float(nbytes), "sum")
    result["bytes"] = total_bytes
    result["mb_per_s"] = total_bytes / 1e6 / result["total_time"]
    result["local"] = {
        "time": elapsed,
        "samples": samples,
        "bytes": nbytes,
        "samples_per_s": samples / elapsed,
        "mb_per_s": nbytes / 1e6 / elapsed,
    }
    log.info(
        "iotest: %d samples, %.1f MB in %.3fs (%s, %s)",
        result["samples"],
        total_bytes / 1e6,
        result["total_time"],
        rate(result["imgs_per_s"], "samples/s"),
        rate(result["mb_per_s"], "MB/s"),
    )
    return result
