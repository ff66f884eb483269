"""The runner: one training loop for every workload, timed per rank and per phase.

    run_benchmark(workload_cls, workload_config, run_config)

1. detect the rank environment, pick the device, start the communicator;
2. build the workload's data, model and optimizer, apply the speed-up switches,
   wrap for the backend;
3. train (epochs of train + test steps), infer, or only read data (iotest), with
   `StepTimer` marks around each phase;
4. reduce per-epoch figures over ranks, gather per-rank summaries to rank 0,
   which writes the run directory (see `mlscale.results.record`).

Data flows one way: launch -> bench -> results.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mlscale.bench import speedups, weights
from mlscale.bench.config import RunConfig
from mlscale.bench.gcpolicy import GcPolicy
from mlscale.bench.observers import load_observers
from mlscale.bench.timing import EVAL_PHASES, PHASES, StepTimer, make_timer, phase_stats
from mlscale.bench.workload import Context, Workload, count_parameters
from mlscale.errors import UserError
from mlscale.launch.comm import Communicator, create_communicator
from mlscale.launch.env import RankEnv, detect_environment
from mlscale.results.record import SCHEMA_VERSION, write_run_dir
from mlscale.versions import collect_versions, git_revision

# -- set-up ------------------------------------------------------------------


def select_device(choice: str, env: RankEnv) -> torch.device:
    if choice == "cpu":
        return torch.device("cpu")
    if choice in ("cuda", "auto") and torch.cuda.is_available():
        # One GPU per local rank; ranks beyond the GPU count share round-robin.
        return torch.device("cuda", env.local_rank % torch.cuda.device_count())
    if choice == "cuda":
        raise UserError("--device cuda: no CUDA device is visible to this process")
    if choice not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device {choice!r}: choose auto, cpu or cuda")
    return torch.device("cpu")


class _Collect(logging.Handler):
    """Keeps formatted log lines so rank 0 can write every rank's log to run.log."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


def setup_logging(rank: int, size: int) -> tuple[logging.Logger, _Collect]:
    log = logging.getLogger("mlscale")
    log.handlers.clear()
    log.setLevel(logging.INFO)
    log.propagate = False
    fmt = logging.Formatter(f"%(asctime)s [rank {rank}/{size}] %(levelname)s %(message)s")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    console.setLevel(logging.INFO if rank == 0 else logging.WARNING)  # quiet non-root ranks
    collect = _Collect()
    collect.setFormatter(fmt)
    log.addHandler(console)
    log.addHandler(collect)
    return log, collect


def per_rank_batch(run: RunConfig, size: int) -> int:
    if run.global_batch_size is None:
        if run.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {run.batch_size}")
        return run.batch_size
    if run.global_batch_size % size:
        raise UserError(f"--global-batch-size {run.global_batch_size} does not divide by {size} ranks")
    return run.global_batch_size // size


def new_run_id(workload: str, system: str, size: int, env: RankEnv) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    job = f"-j{env.job_id}" if env.job_id else ""
    safe_system = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in system)
    return f"{workload}-{safe_system}-{size}r{job}-{stamp}-{secrets.token_hex(2)}"


# -- the loop ----------------------------------------------------------------


class Accumulator:
    """Sums of loss and metrics on the device; read once per epoch (no per-step sync)."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.samples = 0

    def add(self, loss: torch.Tensor | None, metrics: dict[str, torch.Tensor], n: int) -> None:
        values = dict(metrics)
        if loss is not None:
            values["loss"] = loss
        for key, value in values.items():
            contribution = value.detach().float() * n
            self.sums[key] = self.sums[key] + contribution if key in self.sums else contribution
        self.samples += n

    def reduce(self, comm: Communicator) -> dict[str, float]:
        """Sample-weighted means over all ranks' steps."""
        keys = sorted(self.sums)
        local = np.array([float(self.sums[k]) for k in keys] + [self.samples], dtype=np.float64)
        total = comm.allreduce(local, "sum")
        n = total[-1]
        return {k: (float(total[i] / n) if n else None) for i, k in enumerate(keys)}


class Trainer:
    """Holds what one rank needs to run steps; the methods are the phases of a run."""

    def __init__(self, workload: Workload, ctx: Context, model, optimizer, precision):
        self.workload = workload
        self.ctx = ctx
        self.model = model
        self.optimizer = optimizer
        self.precision = precision
        self.graphed: speedups.GraphedStep | None = None
        self.show_progress = ctx.run.progress and ctx.rank == 0

    # A whole step for CUDA-graph capture: forward, loss, backward, optimizer.
    def _step_body(self, batch) -> torch.Tensor:
        wl = self.workload
        with self.precision.autocast():
            loss = wl.loss(wl.forward(self.model, batch), batch)
        self.precision.backward(loss)
        self.precision.step(self.optimizer)
        self.optimizer.zero_grad(set_to_none=False)
        return loss

    def _fetch(self, it, timer: StepTimer):
        """Start a step: wait for the next batch and move it to the device, timed."""
        timer.step_start()
        batch = next(it)
        timer.mark("data_wait")
        batch = self.workload.to_device(batch, self.ctx.device)
        if self.ctx.run.channels_last:
            batch = speedups.to_channels_last(batch)
        timer.mark("h2d")
        return batch

    def _steps(self, steps: int, desc: str):
        return tqdm(range(steps), desc=desc, disable=not self.show_progress, leave=False)

    def train_steps(self, data, steps: int, timer: StepTimer, desc: str = "train") -> Accumulator:
        wl, comm, model, opt = self.workload, self.ctx.comm, self.model, self.optimizer
        acc = Accumulator()
        model.train()
        it = iter(data)
        for _ in self._steps(steps, desc):
            batch = self._fetch(it, timer)
            if self.ctx.run.cuda_graphs:
                if self.graphed is None:
                    self.graphed = speedups.GraphedStep(self._step_body, batch)
                self.graphed.load(batch)
                loss = self.graphed.replay()
                timer.mark("forward")  # the graph runs forward, backward and optimizer as one
                timer.mark("backward")
                timer.mark("optimizer")
                acc.add(loss, {}, wl.batch_size_of(batch))
                continue
            with self.precision.autocast():
                output = wl.forward(model, batch)
                loss = wl.loss(output, batch)
            with torch.no_grad():
                metrics = wl.metrics(output, batch)
            timer.mark("forward")
            self.precision.backward(loss)
            timer.mark("backward")
            comm.after_backward(model)
            self.precision.step(opt)
            opt.zero_grad(set_to_none=True)
            timer.mark("optimizer")
            acc.add(loss, metrics, wl.batch_size_of(batch))
        return acc

    def eval_steps(self, data, steps: int, timer: StepTimer, desc: str, inference: bool = False) -> Accumulator:
        wl, model = self.workload, self.model
        acc = Accumulator()
        model.eval()
        it = iter(data)
        with torch.inference_mode() if inference else torch.no_grad():
            for _ in self._steps(steps, desc):
                batch = self._fetch(it, timer)
                with self.precision.autocast():
                    output = wl.forward(model, batch)
                    loss = None if inference else wl.loss(output, batch)
                metrics = {} if inference else wl.metrics(output, batch)
                if inference:
                    wl.on_inference_batch(output, batch)
                timer.mark("forward")
                acc.add(loss, metrics, wl.batch_size_of(batch))
        return acc

    def io_steps(self, data, steps: int, timer: StepTimer) -> tuple[int, int]:
        """Read (and distribute) batches only: the iotest mode. Returns samples, bytes."""
        samples = nbytes = 0
        it = iter(data)
        for _ in self._steps(steps, "iotest"):
            batch = self._fetch(it, timer)
            samples += self.workload.batch_size_of(batch)
            nbytes += _nbytes(batch)
        return samples, nbytes


def _nbytes(batch) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.numel() * batch.element_size()
    if isinstance(batch, (tuple, list)):
        return sum(_nbytes(b) for b in batch)
    if isinstance(batch, dict):
        return sum(_nbytes(b) for b in batch.values())
    return 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _common_steps(comm: Communicator, data, cap: int | None, what: str) -> int:
    """Every rank must take the same number of steps or DDP hangs: use the minimum."""
    try:
        local = len(data)
    except TypeError:
        raise UserError(f"the {what} data of this workload has no length") from None
    steps = int(comm.allreduce(float(local), "min"))
    if cap is not None:
        steps = min(steps, cap)
    if steps < 1:
        raise UserError(
            f"no {what} batches on at least one rank: the data set is smaller than "
            f"ranks x batch size ({comm.size} x {comm.size and local})"
        )
    return steps


# -- the run -------------------------------------------------------------------


def run_benchmark(workload_cls: type[Workload], wconfig: Any, run: RunConfig) -> Path | None:
    """Run one benchmark on this rank; rank 0 returns the run directory it wrote."""
    t_start = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    env = detect_environment()
    device = select_device(run.device, env)
    speedups.check_supported(run, device)
    if run.mode not in workload_cls.modes:
        raise UserError(
            f"workload {workload_cls.name} has no --mode {run.mode} (it has: {', '.join(workload_cls.modes)})"
        )
    if run.epochs < 1 and run.mode == "train":
        raise UserError(f"--epochs must be at least 1, got {run.epochs}")
    comm = create_communicator(run.backend, env, str(device))
    log, collected = setup_logging(comm.rank, comm.size)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    run.batch_size = per_rank_batch(run, comm.size)
    torch.manual_seed(run.seed)
    np.random.seed(run.seed)

    proposed = (run.run_id or new_run_id(workload_cls.name, run.system, comm.size, env)) if comm.rank == 0 else None
    run_id = comm.bcast(proposed)
    out_root = Path(run.out)
    if comm.rank == 0 and (out_root / run_id).exists():
        raise UserError(f"{out_root / run_id}: run directory already exists; choose another --run-id")
    staging = out_root / f".{run_id}.staging"
    if comm.rank == 0:
        staging.mkdir(parents=True, exist_ok=True)
    comm.barrier()

    ctx = Context(env=env, comm=comm, device=device, run=run, log=log)
    log.info(
        "%s: %d rank(s) on %d node(s) via %s, backend %s, device %s",
        workload_cls.name,
        comm.size,
        env.num_nodes,
        env.launcher,
        comm.name,
        device,
    )
    workload = workload_cls(wconfig, ctx)
    observers = load_observers(ctx)
    lr = run.lr if run.lr is not None else workload_cls.default_lr

    status, error = "ok", None
    result: dict[str, Any] = {}
    gc_policy = GcPolicy(run.gc)
    try:
        result = _execute(workload, ctx, lr, observers, staging, t_start, gc_policy)
    except UserError:
        if comm.rank == 0:
            _remove_tree(staging)  # nothing half-written
        raise
    except Exception as exc:  # record the failure, then let the launcher see it
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("run failed on rank %d", comm.rank)
        for obs in observers:
            obs.run_end("failed")
        if comm.rank == 0:
            _write_failed(run, workload_cls, env, comm, run_id, started_at, error, collected.lines)
        raise
    else:
        for obs in observers:
            obs.run_end(status)
    finally:
        gc_policy.end()  # after the observers' run_end: the gc observer stops counting first

    summary = result["rank_summary"]
    summary["log"] = collected.lines
    summary["observers"] = {obs.name: obs.rank_summary() for obs in observers}
    summaries = comm.gather(summary)
    path = None
    if comm.rank == 0:
        record = _build_record(workload, ctx, lr, run_id, started_at, result, summaries)
        extra: dict[str, str | bytes] = {}
        for obs in observers:
            record.update(obs.record_fields(record, summaries))
        for obs in observers:
            extra.update(obs.files(record))
        log_text = "\n".join(line for s in summaries for line in s.pop("log")) + "\n"
        for name in sorted(os.listdir(staging)) if staging.exists() else []:
            extra[name] = (staging / name).read_bytes()
        path = write_run_dir(out_root, run_id, record, summaries, log_text, extra)
        _remove_tree(staging)
        _index(out_root, path, log)
        log.info("wrote %s", path)
    comm.barrier()
    comm.close()
    return path


def _execute(
    workload: Workload, ctx: Context, lr: float, observers, staging: Path, t_start: float, gc_policy: GcPolicy
) -> dict:
    run, comm, device, log = ctx.run, ctx.comm, ctx.device, ctx.log
    if run.save_weights and comm.rank == 0:
        weights.check_writable(run.save_weights)
    model = workload.build_model().to(device)
    if run.weights:
        weights.load_weights(model, run.weights)
    bare_model = model  # the wrappers below share its parameters
    info = {"parameters": count_parameters(model), **workload.info()}
    model = speedups.prepare_model(model, run)
    comm.broadcast_parameters(model)
    model = comm.wrap_model(model)
    model = speedups.maybe_compile(model, run)
    optimizer = comm.wrap_optimizer(workload.build_optimizer(model.parameters(), lr), model)
    precision = speedups.Precision(run.amp, device)
    trainer = Trainer(workload, ctx, model, optimizer, precision)
    setup_time = time.perf_counter() - t_start

    meta = {
        "workload": workload.name,
        "mode": run.mode,
        "ranks": comm.size,
        "lr": lr,
        "batch_size": run.batch_size,
        "epochs": run.epochs,
    }
    gc_policy.before_timed()  # after set-up: later full collections skip the set-up's objects
    for obs in observers:
        obs.run_start(meta)

    rank_epochs: list[dict] = []
    epoch_stats: list[dict] = []
    train_phases: list[dict[str, np.ndarray]] = []
    test_phases: list[dict[str, np.ndarray]] = []
    inference = iotest = None
    t_bench = time.perf_counter()

    if run.mode == "train":
        train_data, test_data = workload.build_data("train"), workload.build_data("test")
        train_steps = _common_steps(comm, train_data, run.max_steps, "train")
        test_steps = _common_steps(comm, test_data, run.max_steps, "test")
        if run.warmup_steps:
            trainer.train_steps(train_data, min(run.warmup_steps, train_steps), StepTimer(), desc="warm-up")
            _sync(device)
            comm.barrier()
            t_bench = time.perf_counter()
        for epoch in range(1, run.epochs + 1):
            for obs in observers:
                obs.epoch_start(epoch)
            timer, test_timer = make_timer(device.type, PHASES), make_timer(device.type, EVAL_PHASES)
            t0 = time.perf_counter()
            train_acc = trainer.train_steps(train_data, train_steps, timer, desc=f"epoch {epoch} train")
            _sync(device)
            t1 = time.perf_counter()
            test_acc = trainer.eval_steps(test_data, test_steps, test_timer, desc=f"epoch {epoch} test")
            _sync(device)
            t2 = time.perf_counter()
            train_phases.append(timer.epoch_end())
            test_phases.append(test_timer.epoch_end())
            mine = {
                "epoch": epoch,
                "wall_time": t2 - t0,
                "train_time": t1 - t0,
                "test_time": t2 - t1,
                "train_samples": train_acc.samples,
                "test_samples": test_acc.samples,
                "train_steps": train_steps,
            }
            rank_epochs.append(mine)
            stats = _epoch_stats(comm, mine, train_acc.reduce(comm), test_acc.reduce(comm), workload.accuracy_metric)
            epoch_stats.append(stats)
            for obs in observers:
                obs.epoch_end(epoch, stats)
            gc_policy.between_epochs()
            log.info(
                "epoch %d: train %.3fs (%.1f samples/s), test %.3fs, train loss %s, test loss %s",
                epoch,
                stats["train_time"],
                stats["train_imgs_per_s"],
                stats["test_time"],
                _fmt(stats["train_loss"]),
                _fmt(stats["test_loss"]),
            )

    if run.mode == "inference" or (run.mode == "train" and run.infer):
        data = workload.build_data("inference")
        steps = _common_steps(comm, data, run.max_steps, "inference")
        timer = make_timer(device.type, EVAL_PHASES)
        comm.barrier()
        t0 = time.perf_counter()
        acc = trainer.eval_steps(data, steps, timer, desc="inference", inference=True)
        _sync(device)
        elapsed = time.perf_counter() - t0
        test_phases.append(timer.epoch_end())
        facts = workload.finish_inference(staging)
        inference = _global_rate(comm, elapsed, acc.samples)
        inference.update(facts or {})
        inference["local"] = {"time": elapsed, "samples": acc.samples}
        log.info(
            "inference: %d samples in %.3fs (%.1f samples/s)",
            inference["samples"],
            inference["total_time"],
            inference["imgs_per_s"],
        )

    if run.mode == "iotest":
        data = workload.build_data("train")
        steps = _common_steps(comm, data, run.max_steps, "train")
        timer = make_timer(device.type, ("data_wait", "h2d"))
        comm.barrier()
        t0 = time.perf_counter()
        samples, nbytes = trainer.io_steps(data, steps, timer)
        _sync(device)
        elapsed = time.perf_counter() - t0
        train_phases.append(timer.epoch_end())
        iotest = _global_rate(comm, elapsed, samples)
        stats = workload.io_stats()
        for key in sorted(stats):  # same keys on every rank, same order of collectives
            iotest[key] = comm.allreduce(float(stats[key]), "sum")
        total_bytes = comm.allreduce(float(nbytes), "sum")
        iotest.update(
            {
                "bytes": total_bytes,
                "mb_per_s": total_bytes / 1e6 / iotest["total_time"],
                "local": {
                    "time": elapsed,
                    "samples": samples,
                    "bytes": nbytes,
                    "samples_per_s": samples / elapsed,
                    "mb_per_s": nbytes / 1e6 / elapsed,
                },
            }
        )
        log.info(
            "iotest: %d samples, %.1f MB in %.3fs (%.1f samples/s, %.1f MB/s)",
            iotest["samples"],
            total_bytes / 1e6,
            iotest["total_time"],
            iotest["imgs_per_s"],
            iotest["mb_per_s"],
        )

    bench_time = time.perf_counter() - t_bench
    if run.save_weights and run.mode == "train" and comm.rank == 0:
        weights.save_weights(bare_model, run.save_weights)
        log.info("saved the model's weights to %s", run.save_weights)
    rank_summary = {
        "rank": comm.rank,
        "local_rank": ctx.env.local_rank,
        "host": ctx.env.hostname,
        "device": str(device),
        "setup_time": setup_time,
        "bench_time": bench_time,
        "epochs": rank_epochs,
        "phases": _merge_phase_stats(train_phases),
        "eval_phases": _merge_phase_stats(test_phases),
        "steps": {"train": _concat(train_phases), "eval": _concat(test_phases)},
        "inference": inference["local"] if inference else None,
        "iotest": iotest["local"] if iotest else None,
    }
    return {
        "epoch_stats": epoch_stats,
        "inference": inference,
        "iotest": iotest,
        "info": {**info, **workload.info()},  # again at the end: facts known only after the run
        "setup_time": setup_time,
        "rank_summary": rank_summary,
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _global_rate(comm: Communicator, elapsed: float, samples: int) -> dict:
    """Measured throughput: global samples over the slowest rank's time."""
    slowest = comm.allreduce(elapsed, "max")
    total = comm.allreduce(float(samples), "sum")
    return {"total_time": slowest, "samples": int(total), "imgs_per_s": total / slowest if slowest else None}


def _epoch_stats(comm: Communicator, mine: dict, train: dict, test: dict, accuracy_metric: str) -> dict:
    times = comm.allreduce(np.array([mine["wall_time"], mine["train_time"], mine["test_time"]]), "max")
    samples = comm.allreduce(np.array([mine["train_samples"], mine["test_samples"]], dtype=np.float64), "sum")
    return {
        "epoch": mine["epoch"],
        "wall_time": float(times[0]),
        "train_time": float(times[1]),
        "test_time": float(times[2]),
        "train_samples": int(samples[0]),
        "test_samples": int(samples[1]),
        "train_imgs_per_s": float(samples[0] / times[1]) if times[1] else None,
        "test_imgs_per_s": float(samples[1] / times[2]) if times[2] else None,
        "train_loss": train.pop("loss", None),
        "test_loss": test.pop("loss", None),
        "train_accuracy": train.get(accuracy_metric),
        "test_accuracy": test.get(accuracy_metric),
        "train_metrics": train,
        "test_metrics": test,
    }


def _concat(per_epoch: list[dict[str, np.ndarray]]) -> dict[str, list[float]]:
    phases = list(dict.fromkeys(p for epoch in per_epoch for p in epoch))
    return {p: np.concatenate([e[p] for e in per_epoch if p in e]).tolist() for p in phases}


def _merge_phase_stats(per_epoch: list[dict[str, np.ndarray]]) -> dict[str, dict]:
    return {p: phase_stats(np.asarray(v)) for p, v in _concat(per_epoch).items()}


def _phases_across_ranks(summaries: list[dict], key: str = "train") -> dict[str, dict]:
    """Per-phase statistics over every step of every rank, and which rank is slowest."""
    out: dict[str, dict] = {}
    phases = list(dict.fromkeys(p for s in summaries for p in s["steps"][key]))
    for phase in phases:
        per_rank = [np.asarray(s["steps"][key].get(phase, []), dtype=np.float64) for s in summaries]
        every = np.concatenate(per_rank) if per_rank else np.zeros(0)
        if every.size == 0:
            continue
        means = np.array([r.mean() if r.size else np.nan for r in per_rank])
        stats = phase_stats(every)
        stats.update(
            {
                "rank_mean_min": float(np.nanmin(means)),
                "rank_mean_max": float(np.nanmax(means)),
                "slowest_rank": int(summaries[int(np.nanargmax(means))]["rank"]),
            }
        )
        out[phase] = stats
    return out


def _build_record(
    workload: Workload, ctx: Context, lr: float, run_id: str, started_at: str, result: dict, summaries: list[dict]
) -> dict:
    run, env, comm = ctx.run, ctx.env, ctx.comm
    epochs = result["epoch_stats"]
    last = epochs[-1] if epochs else {}
    hosts = list(dict.fromkeys(s["host"] for s in summaries))
    num_gpus = sum(1 for s in summaries if s["device"].startswith("cuda"))
    total_time = max(s["bench_time"] for s in summaries)
    phases = _phases_across_ranks(summaries, "train")
    eval_phases = _phases_across_ranks(summaries, "eval")
    for s in summaries:
        s.pop("steps")  # raw step times stay out of the files; their statistics are kept
    return {
        **_record_header(run, workload.name, env, comm, run_id, started_at, "ok", None),
        "device_type": ctx.device.type,
        "num_ranks": comm.size,
        "num_nodes": len(hosts),
        "num_gpus": num_gpus,
        "hosts": hosts,
        "job_id": env.job_id,
        "versions": collect_versions(),
        "git_revision": git_revision(),
        "config": {"run": asdict(run), "workload": asdict(workload.config)},
        "batch_size": run.batch_size,
        "global_batch_size": run.batch_size * comm.size,
        "epochs": run.epochs if run.mode == "train" else 0,
        "learning_rate": lr,
        "accuracy_metric": workload.accuracy_metric,
        "accuracy_caption": workload.accuracy_caption,
        "setup_time": max(s["setup_time"] for s in summaries),
        "total_time": total_time,
        "epoch_stats": epochs,
        "train_loss": last.get("train_loss"),
        "test_loss": last.get("test_loss"),
        "train_accuracy": last.get("train_accuracy"),
        "test_accuracy": last.get("test_accuracy"),
        "throughput": {
            "train_imgs_per_s": last.get("train_imgs_per_s"),
            "inference_imgs_per_s": (result["inference"] or {}).get("imgs_per_s"),
        },
        "inference": {k: v for k, v in result["inference"].items() if k != "local"} if result["inference"] else None,
        "iotest": {k: v for k, v in result["iotest"].items() if k != "local"} if result["iotest"] else None,
        "phases": phases,
        "eval_phases": eval_phases,
        "workload_info": result["info"],
    }


def _record_header(
    run: RunConfig,
    workload: str,
    env: RankEnv,
    comm: Communicator,
    run_id: str,
    started_at: str,
    status: str,
    error: str | None,
) -> dict:
    """The fields every record starts with, whether the run succeeded or not."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "workload": workload,
        "mode": run.mode,
        "status": status,
        "error": error,
        "system": run.system,
        "tag": run.tag,
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "launcher": env.launcher,
        "backend": comm.name,
    }


def _write_failed(
    run: RunConfig,
    workload_cls,
    env: RankEnv,
    comm: Communicator,
    run_id: str,
    started_at: str,
    error: str,
    lines: list[str],
) -> None:
    """A failed run still leaves a complete (small) record, so sweeps can show the failure."""
    record = {
        **_record_header(run, workload_cls.name, env, comm, run_id, started_at, "failed", error),
        "num_ranks": comm.size,
        "num_nodes": env.num_nodes,
        "hosts": [env.hostname],
        "config": {"run": asdict(run)},
        "epoch_stats": [],
        "inference": None,
        "iotest": None,
        "phases": {},
    }
    try:
        write_run_dir(run.out, run_id, record, [], "\n".join(lines) + "\n")
        _remove_tree(Path(run.out) / f".{run_id}.staging")
    except Exception:  # never mask the original failure
        pass


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _index(root: Path, run_dir: Path, log: logging.Logger) -> None:
    """Add the run to the results store when one is available (mlscale.results.store)."""
    try:
        from mlscale.results import store
    except ImportError:
        return
    try:
        store.index_run(root, run_dir)
    except Exception as exc:  # the run directory is the source of truth; the index can be rebuilt
        log.warning("could not index %s: %s", run_dir, exc)
