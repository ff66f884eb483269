"""The torch engine: one GPU per local rank (or the CPU), DDP/Horovod/MPI wrapping through
the communicator, AMP, channels_last, torch.compile and CUDA graphs, `torch.save` weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mlscale.bench.config import RunConfig
from mlscale.bench.engine import Engine
from mlscale.engines.torch import checkpoint, speedups, weights
from mlscale.engines.torch.steps import Trainer
from mlscale.launch.devices import pick_device
from mlscale.launch.env import RankEnv


def select_device(choice: str, env: RankEnv) -> torch.device:
    gpus = torch.cuda.device_count() if choice != "cpu" and torch.cuda.is_available() else 0
    picked = pick_device(choice, env.local_rank, gpus)
    return torch.device(picked.type, picked.index) if picked.index is not None else torch.device(picked.type)


class TorchEngine(Engine):
    name = "torch"

    select_device = staticmethod(select_device)

    @classmethod
    def model_facts(cls, model: torch.nn.Module) -> dict:
        return {
            "parameters": sum(p.numel() for p in model.parameters()),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        }

    @classmethod
    def check_supported(cls, run: RunConfig, device: torch.device) -> None:
        speedups.check_supported(run, device)

    @classmethod
    def prepare(cls, run: RunConfig, device: torch.device) -> None:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.manual_seed(run.seed)
        np.random.seed(run.seed)

    def setup(self, lr: float) -> dict:
        run, comm, device, wl = self.ctx.run, self.ctx.comm, self.ctx.device, self.workload
        model = wl.build_model().to(device)
        if run.weights:
            state, meta = weights.read_weights(run.weights)
            wl.check_checkpoint(meta, run.weights)
            weights.load_state(model, state, run.weights)
        self.bare_model = model  # the wrappers below share its parameters
        facts = {"parameters": self.model_facts(model)["parameters"]}
        model = speedups.prepare_model(model, run)
        comm.broadcast_parameters(model)
        model = comm.wrap_model(model)
        model = speedups.maybe_compile(model, run)
        optimizer = comm.wrap_optimizer(wl.build_optimizer(model.parameters(), lr), model)
        self.trainer = Trainer(wl, self.ctx, model, optimizer, speedups.Precision(run.amp, device))
        return facts

    def train_steps(self, data, steps, timer, desc="train", control=None):
        return self.trainer.train_steps(data, steps, timer, desc, control)

    def eval_steps(self, data, steps, timer, desc, split):
        return self.trainer.eval_steps(data, steps, timer, desc, split)

    def io_steps(self, data, steps, timer):
        return self.trainer.io_steps(data, steps, timer)

    def sync(self) -> None:
        if self.ctx.device.type == "cuda":
            torch.cuda.synchronize(self.ctx.device)

    def save_weights(self, path: str) -> None:
        weights.save_weights(self.bare_model, path, self.workload.checkpoint_meta())

    supports_checkpoints = True
    rng_state = staticmethod(checkpoint.rng_state)
    set_rng_state = staticmethod(checkpoint.set_rng_state)
    data_state = staticmethod(checkpoint.data_state)
    set_data_state = staticmethod(checkpoint.set_data_state)

    def save_checkpoint(self, directory: Path, rank_states: list) -> None:
        t = self.trainer
        checkpoint.save(directory, self.bare_model, t.optimizer, t.precision.scaler, self.workload.train_state(),
                        rank_states)  # fmt: skip

    def load_checkpoint(self, directory: Path) -> list:
        t = self.trainer
        return checkpoint.load(directory, self.bare_model, t.optimizer, t.precision.scaler, self.workload)
