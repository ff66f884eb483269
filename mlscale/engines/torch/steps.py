"""The torch step loop: train, evaluation and read-only steps, timed per phase."""

from __future__ import annotations

import torch
from tqdm import tqdm

from mlscale.bench.stats import Accumulator
from mlscale.bench.timing import StepTimer
from mlscale.bench.workload import Context, Workload
from mlscale.engines.torch import speedups, tree


def _detached(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().float() for k, v in values.items()}


class Trainer:
    """Holds what one rank needs to run steps; the methods are the phases of a run."""

    def __init__(self, workload: Workload, ctx: Context, model, optimizer, precision: speedups.Precision):
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
            batch = tree.to_channels_last(batch)
        timer.mark("h2d")
        return batch

    def _steps(self, steps: int, desc: str):
        return tqdm(range(steps), desc=desc, disable=not self.show_progress, leave=False)

    def train_steps(self, data, steps: int, timer: StepTimer, desc: str = "train", control=None) -> Accumulator:
        """Timed steps; with a `control` (mlscale.bench.preempt), stoppable at every step boundary
        and resumable part-way through the pass."""
        acc = control.accumulator() if control else Accumulator()
        self.model.train()
        it = iter(data)
        done = control.fast_forward(it) if control else 0
        for _ in self._steps(steps - done, desc):
            if control and control.stop_now():
                break
            self._train_step(self._fetch(it, timer), timer, acc)
            if control:
                control.step_done()
        return acc

    def _train_step(self, batch, timer: StepTimer, acc: Accumulator) -> None:
        wl, model, opt = self.workload, self.model, self.optimizer
        if self.ctx.run.cuda_graphs:
            if self.graphed is None:
                self.graphed = speedups.GraphedStep(self._step_body, batch)
            self.graphed.load(batch)
            loss = self.graphed.replay()
            timer.mark("forward")  # the graph runs forward, backward and optimizer as one
            timer.mark("backward")
            timer.mark("optimizer")
            acc.add(_detached({"loss": loss}), wl.batch_size_of(batch))
            return
        with self.precision.autocast():
            output = wl.forward(model, batch)
            loss = wl.loss(output, batch)
        with torch.no_grad():
            metrics = wl.metrics(output, batch)
        timer.mark("forward")
        self.precision.backward(loss)
        timer.mark("backward")
        self.ctx.comm.after_backward(model)
        self.precision.step(opt)
        opt.zero_grad(set_to_none=True)
        timer.mark("optimizer")
        acc.add(_detached({**metrics, "loss": loss}), wl.batch_size_of(batch))

    def eval_steps(self, data, steps: int, timer: StepTimer, desc: str, split: str = "test") -> Accumulator:
        """Forward passes over `split`; "inference" computes no loss or metrics."""
        wl, model = self.workload, self.model
        inference = split == "inference"
        acc = Accumulator()
        model.eval()
        it = iter(data)
        with torch.inference_mode() if inference else torch.no_grad():
            for _ in self._steps(steps, desc):
                batch = self._fetch(it, timer)
                with self.precision.autocast():
                    output = wl.forward(model, batch)
                    loss = None if inference else wl.loss(output, batch)
                values = {} if inference else {**wl.metrics(output, batch), "loss": loss}
                wl.eval_batch(split, output, batch)
                timer.mark("forward")
                acc.add(_detached(values), wl.batch_size_of(batch))
        return acc

    def io_steps(self, data, steps: int, timer: StepTimer) -> tuple[int, int]:
        """Read (and distribute) batches only: the iotest mode. Returns samples, bytes."""
        samples = nbytes = 0
        it = iter(data)
        for _ in self._steps(steps, "iotest"):
            batch = self._fetch(it, timer)
            samples += self.workload.batch_size_of(batch)
            nbytes += tree.nbytes(batch)
        return samples, nbytes
