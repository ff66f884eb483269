"""The runner: one run of one workload on every rank, timed per rank and per phase.

    run_benchmark(workload_cls, workload_config, run_config)

1. detect the rank environment, let the workload's engine pick the device, start the
   communicator, compute the batch sizes (`batching`);
2. the engine builds the model and optimizer, applies the speed-up switches and wraps
   them for the backend;
3. train, infer or only read data (`modes`), with the engine's timed steps;
4. gather per-rank summaries to rank 0, which writes the run directory (`records`,
   `mlscale.results.record`) and, when asked, the weights.

Framework-neutral: nothing here imports torch or TensorFlow (see `engine`).
Data flows one way: launch -> bench -> results.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from mlscale.bench import faults, modes, records, resume, rundir
from mlscale.bench.batching import batch_sizes
from mlscale.bench.checkpoints import check_writable
from mlscale.bench.config import RunConfig
from mlscale.bench.engine import Engine, get_engine
from mlscale.bench.failures import DIAGNOSE_S, JobFailure
from mlscale.bench.gcpolicy import GcPolicy
from mlscale.bench.logs import Collect, setup_logging
from mlscale.bench.observers import RunObserver, load_observers
from mlscale.bench.preempt import TEST_SIGNAL_ENV, Preempted, StopFlag, TrainControl, parse_test_signal
from mlscale.bench.stats import concat_steps, merged_phase_stats
from mlscale.bench.watchdog import Watchdog
from mlscale.bench.workload import Context, Workload
from mlscale.errors import UserError
from mlscale.launch import abort
from mlscale.launch.comm import create_communicator
from mlscale.launch.env import detect_environment
from mlscale.results.record import write_run_dir


@dataclass
class _Run:
    """What one rank holds while a run is under way."""

    ctx: Context
    engine_cls: type[Engine]
    run_id: str
    staging: Path
    collected: Collect
    t_start: float
    failure: JobFailure
    watchdog: Watchdog | None
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    previous: resume.Previous | None = None  # the preempted run this one continues (--resume)


def _check_run(workload_cls: type[Workload], run: RunConfig) -> None:
    if run.mode not in workload_cls.modes:
        raise UserError(
            f"workload {workload_cls.name} has no --mode {run.mode} (it has: {', '.join(workload_cls.modes)})"
        )
    if run.epochs < 1 and run.mode == "train":
        raise UserError(f"--epochs must be at least 1, got {run.epochs}")


def _setup_problem(run: RunConfig, run_dir: Path, previous: resume.Previous | None) -> str | None:
    """What rank 0 finds wrong with the run's outputs before any rank starts, as one line."""
    try:
        if run_dir.exists() and not previous:  # a resumed run replaces its directory at the end
            raise UserError(f"{run_dir}: run directory already exists; choose another --run-id")
        if run.save_weights:
            check_writable(run.save_weights)
    except UserError as err:
        return str(err)
    return None


def _start(workload_cls: type[Workload], wconfig: Any, run: RunConfig) -> _Run:
    """Rank environment, device, communicator, batch sizes, run id and staging directory."""
    t_start = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    run, previous = resume.resolve(run, workload_cls.name)  # file checks only: every rank fails alike
    env = detect_environment()
    abort.joined(env.rank, env.size)
    engine_cls = get_engine(workload_cls.engine_for(wconfig))
    device = engine_cls.select_device(run.device, env)
    engine_cls.check_supported(run, device)
    _check_run(workload_cls, run)
    # The backend's own timeout (gloo's) only backs up the watchdog, which names the rank: it comes later.
    comm = create_communicator(
        run.backend, env, str(device), timeout_s=run.collective_timeout + 60, framework=engine_cls.name
    )
    log, collected = setup_logging(comm.rank, comm.size)
    batch = batch_sizes(run.batch_size, run.global_batch_size, comm.size)
    engine_cls.prepare(run, device)
    if previous:
        resume.check_fits(previous, run, comm, engine_cls)

    proposed = run.run_id or rundir.new_run_id(workload_cls.name, run.system, comm.size, env)
    out_root = Path(run.out)
    # Rank 0 checks, every rank learns the verdict: none is left in the barrier below for a peer that left.
    problem = _setup_problem(run, out_root / proposed, previous) if comm.rank == 0 else None
    watchdog = Watchdog(comm.rank, comm.size, env.hostname, run.collective_timeout) if comm.size > 1 else None
    heartbeat = watchdog.listen(env.master_addr or env.hostname) if watchdog and comm.rank == 0 else None
    run_id, problem, heartbeat = comm.bcast((proposed, problem, heartbeat) if comm.rank == 0 else None)
    if problem:
        raise UserError(problem) if comm.rank == 0 else abort.PeerFailed(UserError.exit_code)
    staging = rundir.staging_dir(out_root, run_id)
    write = partial(records.write_failed, run, workload_cls.name, env, comm, run_id, started_at, lines=collected.lines)
    failure = JobFailure(comm.rank, write, staging)
    if watchdog is not None:
        watchdog.start(heartbeat, failure.end_job)
        abort.set_reporter(partial(watchdog.report_failure, grace_s=abort.PEER_GRACE_S))
    faults.maybe_fail(comm.rank, "setup")
    comm.barrier()
    if comm.rank == 0:  # after the barrier: a rank that failed at set-up leaves nothing behind
        staging.mkdir(parents=True, exist_ok=True)
    ctx = Context(env=env, comm=comm, device=device, run=run, log=log, batch=batch, outputs=staging)
    return _Run(ctx, engine_cls, run_id, staging, collected, t_start, failure, watchdog, started_at, previous)


def run_benchmark(workload_cls: type[Workload], wconfig: Any, run: RunConfig) -> Path | None:
    """Run one benchmark on this rank; rank 0 returns the run directory it wrote."""
    state = _start(workload_cls, wconfig, run)
    ctx = state.ctx
    run, comm, env, log = ctx.run, ctx.comm, ctx.env, ctx.log
    log.info(
        "%s: %d rank(s) on %d node(s) via %s, backend %s, device %s",
        workload_cls.name, comm.size, env.num_nodes, env.launcher, comm.name, ctx.device,
    )  # fmt: skip
    workload = workload_cls(wconfig, ctx)
    engine = state.engine_cls(workload, ctx)
    observers = load_observers(ctx)
    lr = run.lr if run.lr is not None else workload_cls.default_lr

    gc_policy = GcPolicy(run.gc)
    flag = StopFlag()
    hook = os.environ.get(TEST_SIGNAL_ENV)  # set alike on every rank: all of them then compare at every step
    control = TrainControl(comm, flag, test_signal=parse_test_signal(hook, comm.rank), every_step=bool(hook))
    try:
        with flag.installed():  # SIGTERM/SIGUSR1 stop training at a step boundary (bench.preempt)
            result = _execute(engine, lr, observers, state, gc_policy, control)
    except UserError:
        if comm.rank == 0:
            rundir.remove_tree(state.staging)  # nothing half-written
        raise
    except Exception as exc:  # record the failure, then let the launcher see it
        error = f"{type(exc).__name__}: {exc}"
        log.exception("run failed on rank %d", comm.rank)
        exc.logged = True  # type: ignore[attr-defined]  # the run command need not print it again
        for obs in observers:
            obs.run_end("failed")
        if comm.rank == 0 and state.watchdog is not None:
            state.watchdog.tripped.wait(DIAGNOSE_S)  # a dead peer: the watchdog's record names it
        state.failure.record(error, say=False)  # the log has said it
        raise
    else:
        for obs in observers:
            obs.run_end("preempted" if result["preemption"] else "ok")
    finally:
        gc_policy.end()  # after the observers' run_end: the gc observer stops counting first

    path = _finish(workload, lr, state, result, observers)
    _close(state, flag if result["preemption"] else None)
    if result["preemption"]:
        raise Preempted(path)
    return path


def _close(state: _Run, stopped_by: StopFlag | None) -> None:
    """Every rank, at the end of a run that did not fail: stop the watchdog, close the communicator."""
    comm, log = state.ctx.comm, state.ctx.log
    comm.barrier()
    if state.watchdog is not None:
        abort.set_reporter(None)
        state.watchdog.stop()
    comm.close()
    if stopped_by is not None and stopped_by.received_at is not None:
        log.info("exiting %.2fs after %s", time.monotonic() - stopped_by.received_at, stopped_by.name)


def _execute(engine: Engine, lr: float, observers: list[RunObserver], state: _Run, gc_policy: GcPolicy,
             control: TrainControl) -> dict:  # fmt: skip
    workload, ctx = engine.workload, engine.ctx
    run, comm = ctx.run, ctx.comm
    facts = engine.setup(lr)
    if state.previous:
        control.resume = resume.load(engine, state.previous, comm)
        control.global_step = control.resume.global_step
        ctx.log.info("resuming %s at epoch %d, step %d", state.previous.run_dir, control.resume.epoch,
                     control.resume.step)  # fmt: skip
    info = {**facts, **workload.info()}
    setup_time = time.perf_counter() - state.t_start

    meta = {"workload": workload.name, "mode": run.mode, "ranks": comm.size, "lr": lr,
            "batch_size": ctx.batch.per_rank, "epochs": run.epochs}  # fmt: skip
    gc_policy.before_timed()  # after set-up: later full collections skip the set-up's objects
    for obs in observers:
        obs.run_start(meta)

    steps = modes.Steps()
    trained = modes.TrainResult(bench_start=time.perf_counter())
    inference = iotest = preemption = None
    if run.mode == "train":
        trained = modes.train(engine, workload, observers, gc_policy, steps, control)
    if control.stopped:
        preemption = _preempt(engine, control, trained, state.staging)
    elif run.mode == "inference" or (run.mode == "train" and run.infer):
        inference = modes.inference(engine, workload, steps)
    if run.mode == "iotest":
        iotest = modes.iotest(engine, workload, steps)
    bench_time = time.perf_counter() - trained.bench_start

    if run.save_weights and run.mode == "train" and comm.rank == 0 and not preemption:
        engine.save_weights(run.save_weights)
        ctx.log.info("saved the model's weights to %s", run.save_weights)
    rank_summary = {
        "rank": comm.rank,
        "local_rank": ctx.env.local_rank,
        "host": ctx.env.hostname,
        "device": str(ctx.device),
        "setup_time": setup_time,
        "bench_time": bench_time,
        "epochs": trained.rank_epochs,
        "phases": merged_phase_stats(steps.train),
        "eval_phases": merged_phase_stats(steps.eval),
        "steps": {"train": concat_steps(steps.train), "eval": concat_steps(steps.eval)},
        "inference": inference["local"] if inference else None,
        "iotest": iotest["local"] if iotest else None,
    }
    return {
        "epoch_stats": trained.epochs,
        "inference": inference,
        "iotest": iotest,
        "info": {**info, **workload.info()},  # again at the end: facts known only after the run
        "rank_summary": rank_summary,
        "preemption": preemption,
    }


def _preempt(engine: Engine, control: TrainControl, trained: modes.TrainResult, staging: Path) -> dict:
    """Collective, after a signal stopped training: the checkpoint, and facts for the record."""
    facts = resume.write_checkpoint(engine, control, trained.rank_state, staging)
    flag = control.flag
    delay = control.stopped_at - flag.received_at if flag.received_at is not None else 0.0
    signame = engine.ctx.comm.gather(flag.name)
    return {"signal": next((s for s in signame or [] if s), None), **facts,
            "stop_seconds": engine.ctx.comm.allreduce(delay, "max")}  # fmt: skip


def _finish(workload: Workload, lr: float, state: _Run, result: dict, observers: list[RunObserver]) -> Path | None:
    """Gather the ranks' summaries; rank 0 writes the run directory and indexes it."""
    ctx = state.ctx
    summary = result["rank_summary"]
    summary["log"] = state.collected.lines
    summary["observers"] = {obs.name: obs.rank_summary() for obs in observers}
    summaries = ctx.comm.gather(summary)
    if ctx.comm.rank != 0:
        return None
    record = records.build_record(workload, ctx, lr, state.run_id, state.started_at, result, summaries)
    if result["preemption"]:
        record.update(status="preempted", preemption=result["preemption"])
    if result["preemption"] or state.previous:
        record = resume.mark_segment(record, state.previous)
    extra: dict[str, str | bytes] = {}
    for obs in observers:
        record.update(obs.record_fields(record, summaries))
    for obs in observers:
        extra.update(obs.files(record))
    log_text = "\n".join(line for s in summaries for line in s.pop("log")) + "\n"
    staging = state.staging
    for path in sorted(staging.rglob("*")) if staging.exists() else []:  # sub-folders too (a folder of masks)
        if path.is_file():
            extra[path.relative_to(staging).as_posix()] = path.read_bytes()
    out_root = Path(ctx.run.out)
    path = write_run_dir(out_root, state.run_id, record, summaries, log_text, extra, replace=bool(state.previous))
    rundir.remove_tree(staging)
    rundir.index(out_root, path, ctx.log)
    ctx.log.info("wrote %s", path)
    return path
