"""synthetic: ResNet-50 on random tensors, the computation of Horovod's
pytorch_synthetic_benchmark.py (random images and labels made once, on the
device; SGD; cross-entropy). It measures the framework and the interconnect,
not a data pipeline."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mlscale.bench.workload import Workload
from mlscale.workloads.synthetic.config import SyntheticConfig
from mlscale.workloads.synthetic.model import build_network


class RepeatedBatch:
    """The same batch, `steps` times: like Horovod's benchmark, which reuses one."""

    def __init__(self, batch: tuple[torch.Tensor, torch.Tensor], steps: int):
        self.batch, self.steps = batch, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            yield self.batch


class Synthetic(Workload):
    name = "synthetic"
    description = "ResNet on random tensors (Horovod synthetic benchmark equivalent)"
    Config = SyntheticConfig
    default_lr = 0.01
    accuracy_caption = "accuracy: top-1 on random labels (a check that training runs, not a quality figure)"

    def build_data(self, split: str):
        cfg, run = self.config, self.ctx.run
        # Different ranks draw different samples; the same rank draws the same ones each run.
        gen = torch.Generator().manual_seed(run.seed + 7919 * self.ctx.rank + (0 if split == "train" else 1))
        images = torch.randn(self.ctx.batch.per_rank, 3, cfg.image_size, cfg.image_size, generator=gen)
        labels = torch.randint(0, cfg.num_classes, (self.ctx.batch.per_rank,), generator=gen)
        steps = cfg.steps_per_epoch if split == "train" else cfg.test_steps
        return RepeatedBatch((images.to(self.ctx.device), labels.to(self.ctx.device)), steps)

    def build_optimizer(self, params, lr: float):
        # Plain SGD, as Horovod's pytorch_synthetic_benchmark.py uses (no momentum buffers).
        return torch.optim.SGD(params, lr=lr)

    def build_model(self):
        return build_network(self.config.model, self.config.num_classes)

    def loss(self, output, batch):
        return F.cross_entropy(output, batch[1])

    def metrics(self, output, batch):
        return {"accuracy": (output.argmax(dim=1) == batch[1]).float().mean()}

    def info(self):
        return {"model": self.config.model, "image_size": self.config.image_size}
