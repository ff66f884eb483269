"""example: a two-layer network tells two interleaved spirals apart.

Everything a workload needs, in one file: data sharded per rank, a model, a loss, a
batch-mean metric (accuracy, every step) and an epoch-level metric (balanced accuracy
from a confusion matrix summed over all ranks at the end of each evaluation pass).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mlscale.bench.workload import Workload
from mlscale.workloads.example.config import ExampleConfig


def spirals(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n points on two noisy spirals, label 0 or 1."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    t = rng.uniform(0.5, 2 * np.pi, n)
    xy = np.stack([t * np.cos(t + np.pi * label), t * np.sin(t + np.pi * label)], 1) / 5
    xy += rng.normal(0, 0.05, xy.shape)
    return torch.tensor(xy, dtype=torch.float32), torch.tensor(label)


class Example(Workload):
    name = "example"
    description = "two spirals, a two-layer network: the workload to copy when adding one"
    Config = ExampleConfig
    default_lr = 0.01

    def build_data(self, split: str):
        n = self.config.points if split == "train" else self.config.points // 4
        seed = [1, 2, 3][("train", "test", "inference").index(split)] * 1000 + self.ctx.rank  # own shard per rank
        x, y = spirals(n, seed)
        data = torch.utils.data.TensorDataset(x, y)
        return torch.utils.data.DataLoader(data, self.ctx.batch.per_rank, shuffle=split == "train", drop_last=True)

    def build_model(self):
        h = self.config.hidden
        return nn.Sequential(nn.Linear(2, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 2))

    def build_optimizer(self, params, lr):
        return torch.optim.Adam(params, lr=lr)

    def loss(self, output, batch):
        return nn.functional.cross_entropy(output, batch[1])

    def metrics(self, output, batch):
        return {"accuracy": (output.argmax(1) == batch[1]).float().mean()}

    # Epoch-level: a confusion matrix per pass, summed over the ranks in eval_end.
    def eval_start(self, split):
        self.confusion = np.zeros((2, 2))

    def eval_batch(self, split, output, batch):
        np.add.at(self.confusion, (batch[1].cpu().numpy(), output.argmax(1).cpu().numpy()), 1)

    def eval_end(self, split):
        total = self.ctx.comm.allreduce(self.confusion, "sum")  # collective: every rank calls it
        recall = np.diag(total) / np.maximum(total.sum(1), 1)
        return {"balanced_accuracy": float(recall.mean()), "evaluated": float(total.sum())}
