"""Overhead of the per-step timing hooks.

Runs the runner's own training loop (`Trainer.train_steps`) on the synthetic
workload twice per round: once with the timing hooks (`StepTimer`, or
`CudaStepTimer` on a GPU) and once bare (`NullTimer`, every hook a no-op).
Rounds alternate the order so drift on a noisy machine hits both sides alike;
the ratio of medians is the overhead. Goal: <= 1%.

    python benchmarks/hook_overhead.py [--model tiny] [--image-size 64] [--steps 50] [--rounds 9]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mlscale.bench.config import RunConfig
from mlscale.bench.timing import NullTimer, make_timer
from mlscale.bench.workload import Context
from mlscale.engines.torch import speedups
from mlscale.engines.torch.steps import Trainer
from mlscale.workloads.synthetic.workload import Synthetic, SyntheticConfig


def build_trainer(model: str, image_size: int, batch: int, steps: int, device: str):
    run = RunConfig(batch_size=batch, device=device, progress=False, backend="single")
    ctx = Context.single_process(run, log_name="bench")
    dev = ctx.device
    workload = Synthetic(
        SyntheticConfig(model=model, image_size=image_size, num_classes=10, steps_per_epoch=steps), ctx
    )
    net = workload.build_model().to(dev)
    opt = workload.build_optimizer(net.parameters(), 0.01)
    trainer = Trainer(workload, ctx, net, opt, speedups.Precision(False, dev))
    return trainer, workload.build_data("train"), dev


def timed_epoch(trainer, data, steps, timer, dev) -> float:
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    trainer.train_steps(data, steps, timer)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    timer.epoch_end()  # reading the events is part of what the hooks cost
    return elapsed


def hook_cost_per_step(device_type: str, steps: int = 20000) -> float:
    """CPU seconds the hooks themselves take per step (step start, 5 marks and the
    epoch-end read-out), measured without a model and in process CPU time, so
    other processes on a busy machine do not inflate it."""
    timer = make_timer(device_type)
    t0 = time.process_time()
    for _ in range(steps):
        timer.step_start()
        for phase in ("data_wait", "h2d", "forward", "backward", "optimizer"):
            timer.mark(phase)
    timer.epoch_end()
    return (time.process_time() - t0) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    torch.manual_seed(0)
    trainer, data, dev = build_trainer(args.model, args.image_size, args.batch_size, args.steps, args.device)
    timed_epoch(trainer, data, args.steps, NullTimer(), dev)  # warm-up: allocator, kernels
    hooked, bare = [], []
    for i in range(args.rounds):
        pair = [("hooked", make_timer(dev.type)), ("bare", NullTimer())]
        for name, timer in pair if i % 2 == 0 else reversed(pair):
            (hooked if name == "hooked" else bare).append(timed_epoch(trainer, data, args.steps, timer, dev))
    h, b = statistics.median(hooked), statistics.median(bare)
    paired = statistics.median(x / y for x, y in zip(hooked, bare))
    cost = hook_cost_per_step(dev.type)
    print(
        f"device {dev}, model {args.model}, image {args.image_size}px, batch {args.batch_size}, "
        f"{args.steps} steps x {args.rounds} rounds"
    )
    print(f"bare loop   : {b / args.steps * 1e3:8.3f} ms/step (median of rounds)")
    print(f"with hooks  : {h / args.steps * 1e3:8.3f} ms/step")
    print(f"ratio hooked/bare = {h / b:.4f} (medians), {paired:.4f} (median of paired rounds); goal <= 1.01")
    print(
        f"hook cost measured directly: {cost * 1e6:.2f} us/step = {100 * cost / (b / args.steps):.4f}% of a bare step"
    )


if __name__ == "__main__":
    main()
