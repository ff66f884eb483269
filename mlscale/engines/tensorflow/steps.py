"""The TensorFlow step loop: train, evaluation and read-only steps, timed per phase.

A training step (forward, loss, gradients, Adam) is one `tf.function`; under
MultiWorkerMirroredStrategy it runs in the replica context, where Keras sums the replicas'
gradients, so each replica's loss is divided by their number (the mean gradient, as DDP and
Horovod give). Under Horovod the tape is a `DistributedGradientTape` (it averages the gradients
itself) and rank 0's variables are broadcast after the first step. The step is timed as a whole
under "forward" (backward and optimizer read 0, as torch's CUDA-graph steps do), and ends by reading
its loss, so the host clock covers the work. Losses and metrics are this rank's; the runner
averages them over ranks, whichever way the gradients travel.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from mlscale.bench.stats import Accumulator
from mlscale.bench.timing import StepTimer
from mlscale.bench.tree import leaves
from mlscale.bench.workload import Context, Workload
from mlscale.engines.tensorflow.distribute import HorovodSync


class Steps:
    def __init__(
        self, workload: Workload, ctx: Context, model, optimizer, strategy, horovod: HorovodSync | None = None
    ):
        self.workload, self.ctx, self.model, self.optimizer, self.strategy = workload, ctx, model, optimizer, strategy
        self.horovod = horovod
        self.replicas = strategy.num_replicas_in_sync if strategy else 1
        self.show_progress = ctx.run.progress and ctx.rank == 0
        self._train = tf.function(self._train_step, reduce_retracing=True)
        self._eval = tf.function(self._eval_step, reduce_retracing=True)

    def _replica_step(self, batch):
        wl, model = self.workload, self.model
        with tf.GradientTape() as tape:
            output = wl.forward(model, batch)
            loss = wl.loss(output, batch)
            scaled = loss / self.replicas
        if self.horovod:
            grads = self.horovod.gradients(tape, scaled, model.trainable_variables)
        else:
            grads = tape.gradient(scaled, model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, wl.metrics(output, batch)

    def _train_step(self, batch):
        if self.strategy:
            return self.strategy.run(self._replica_step, args=(batch,))
        return self._replica_step(batch)

    def _eval_step(self, batch):
        wl = self.workload
        output = wl.forward(self.model, batch)
        return output, wl.loss(output, batch), wl.metrics(output, batch)

    def _fetch(self, it, timer: StepTimer):
        timer.step_start()
        batch = next(it)
        timer.mark("data_wait")
        batch = self.workload.to_device(batch, self.ctx.device)
        timer.mark("h2d")
        return batch

    def _range(self, steps: int, desc: str):
        return tqdm(range(steps), desc=desc, disable=not self.show_progress, leave=False)

    def train_steps(self, data, steps: int, timer: StepTimer, desc: str = "train", control=None) -> Accumulator:
        """Timed steps; a `control` may stop them (no checkpoint: this engine cannot resume)."""
        acc, it = Accumulator(), iter(data)
        for _ in self._range(steps, desc):
            if control and control.stop_now():
                break
            batch = self._fetch(it, timer)
            loss, metrics = self._train(batch)
            values = {"loss": float(loss), **{k: float(v) for k, v in metrics.items()}}  # waits for the step
            if self.horovod:
                self.horovod.after_step(self.model, self.optimizer)
            for phase in ("forward", "backward", "optimizer"):
                timer.mark(phase)
            acc.add(values, self.workload.batch_size_of(batch))
            if control:
                control.step_done()
        return acc

    def eval_steps(self, data, steps: int, timer: StepTimer, desc: str, split: str = "test") -> Accumulator:
        wl, acc, it = self.workload, Accumulator(), iter(data)
        for _ in self._range(steps, desc):
            batch = self._fetch(it, timer)
            if split == "inference":
                output, values = wl.forward(self.model, batch), {}
            else:
                output, loss, metrics = self._eval(batch)
                values = {"loss": float(loss), **{k: float(v) for k, v in metrics.items()}}
            wl.eval_batch(split, output, batch)
            timer.mark("forward")
            acc.add(values, wl.batch_size_of(batch))
        return acc

    def io_steps(self, data, steps: int, timer: StepTimer) -> tuple[int, int]:
        samples = nbytes = 0
        it = iter(data)
        for _ in self._range(steps, "iotest"):
            batch = self._fetch(it, timer)
            samples += self.workload.batch_size_of(batch)
            nbytes += sum(int(np.prod(t.shape)) * t.dtype.size for t in leaves(batch) if hasattr(t, "dtype"))
        return samples, nbytes
