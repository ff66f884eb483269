"""methane-plume (seed 000, Carbon Mapper CNN): a CH4 tile classifier turned into a per-pixel plume
saliency map over an AVIRIS-NG flightline.

- train: 256x256 CH4 tiles from tiles.h5 (`mlscale data methane-plume`), GoogLeNet (1 channel,
  2 classes, aux heads) or the padding-free `tilenet`, class-weighted cross-entropy, SGD momentum;
  each test pass finds the best-F1 threshold over every rank's tiles (test metrics and the
  record's workload_info), and `--save-weights` keeps it beside the weights.
- inference: one flightline (ENVI), rows split across ranks (`inference.py`), saliency by
  --method cnn|fcn|exact, gathered on rank 0 and written as `<stem>_saliency.img/.hdr` into the
  run directory. A sample is one output pixel.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from mlscale.bench.workload import Workload
from mlscale.errors import UserError
from mlscale.workloads.methane_plume.checkpoint import FORMAT, build_tile_classifier, check_tile_size
from mlscale.workloads.methane_plume.config import MethanePlumeConfig, MethanePlumeData
from mlscale.workloads.methane_plume.inference import SlabBatch, SlabBatches, scatter_flightline, write_saliency


class MethanePlume(Workload):
    name = "methane-plume"
    description = "CH4 plume tile CNN (GoogLeNet) and dense per-pixel saliency over ENVI flightlines (seed 000)"
    Config = MethanePlumeConfig
    DataConfig = MethanePlumeData
    default_lr = 1e-3
    accuracy_caption = "accuracy: tile classification at probability 0.5 (best-F1 threshold in workload_info)"

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self._weights: torch.Tensor | None = None
        self._eval_probs: list[torch.Tensor] = []
        self._eval_labels: list[torch.Tensor] = []
        self._method_fn = None
        self._saliency = np.zeros((0, 0), np.float32)
        self._image = None
        self._threshold: dict = {}
        self._dense_model = None  # the InContextGoogLeNet being trained for its dense form

    # -- data ----------------------------------------------------------------
    def build_data(self, split: str):
        if split == "inference":
            block, self._image = scatter_flightline(self.config, self.ctx.comm)
            a, b = block.rows
            tile = self.config.tile_size
            self._saliency = np.full((b - a, block.slab.shape[1] - tile + 1), np.nan, dtype=np.float32)
            batch = self.ctx.batch.per_rank
            return SlabBatches(block.slab, self.config, batch, block.most_rows, block.top, block.bottom)
        from mlscale.workloads.methane_plume.training import TileDataset, TurnedBatches, class_weights, read_labels

        cfg, ctx = self.config, self.ctx
        if not cfg.tiles:
            raise UserError("methane-plume: --tiles H5 is needed to train (see `mlscale data methane-plume`)")
        h5_split = "train" if split == "train" else "test"
        labels = read_labels(cfg.tiles, h5_split)
        if split == "train":
            self._weights = class_weights(labels)
        mine = np.arange(ctx.rank, len(labels), ctx.size)  # round-robin shard
        augment = cfg.augment and split == "train"
        dense = split == "train" and self._dense
        context = self._context() if dense else 0
        seed = ctx.run.seed + ctx.rank
        dataset = TileDataset(
            cfg.tiles, h5_split, cfg.preset, mine, augment=augment and not dense, seed=seed, context=context
        )
        gen = torch.Generator().manual_seed(seed)
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=ctx.batch.per_rank,
            shuffle=split == "train",
            drop_last=split == "train",
            num_workers=cfg.workers,
            generator=gen,
            collate_fn=TurnedBatches(seed) if augment and dense else None,  # the dense form turns by batch
        )

    # -- model ---------------------------------------------------------------
    @property
    def _dense(self) -> bool:
        """Training for the dense form (`--dense-consistency`)?"""
        return self.config.dense_consistency > 0 and self.ctx.run.mode == "train"

    def _context(self) -> int:
        from mlscale.workloads.methane_plume.training import read_geometry

        return self.config.context or read_geometry(self.config.tiles)[1]

    def build_model(self):
        torch.manual_seed(self.ctx.run.seed)
        if self.config.dense_consistency < 0:
            raise UserError(f"--dense-consistency {self.config.dense_consistency:g}: must not be negative")
        if self._dense:
            from mlscale.workloads.methane_plume.consistency import InContextGoogLeNet
            from mlscale.workloads.methane_plume.googlenet import googlenet_plume
            from mlscale.workloads.methane_plume.training import check_dense_config

            check_dense_config(self.config)
            model = googlenet_plume(model_cls=InContextGoogLeNet)
            model.tile, model.share = self.config.tile_size, self.config.dense_share
            self._dense_model = model
        else:
            model = build_tile_classifier(self.config.arch)
        check_tile_size(model, self.config.arch, self.config.tile_size)
        return model

    def epoch_start(self, epoch: int) -> None:
        if self._dense_model is not None:  # the in-context loss starts after the warm-up epochs
            self._dense_model.active = epoch > self.config.dense_warmup

    def forward(self, model, batch):
        if isinstance(batch, SlabBatch):
            if self._method_fn is None:
                from mlscale.workloads.methane_plume.saliency import build_method

                bare = getattr(model, "module", model)
                bare = getattr(bare, "_orig_mod", bare)  # torch.compile
                cfg = self.config
                self._method_fn = build_method(
                    cfg.method, bare, cfg.tile_size, self.ctx.batch.per_rank, self.ctx.device
                )
            return self._method_fn(batch.slab, top=batch.top, bottom=batch.bottom)
        return model(batch[0])

    def to_device(self, batch, device, non_blocking=True):
        return batch if isinstance(batch, SlabBatch) else super().to_device(batch, device, non_blocking)

    def batch_size_of(self, batch) -> int:
        return batch.pixels if isinstance(batch, SlabBatch) else len(batch[0])

    def loss(self, output, batch):
        from mlscale.workloads.methane_plume.consistency import dense_loss

        if self._weights is None:
            self._weights = torch.ones(2)
        return dense_loss(output, batch[1], self._weights, self.config.dense_consistency)

    def metrics(self, output, batch):
        from mlscale.workloads.methane_plume.consistency import DenseOutput, logit_mismatch, tile_output
        from mlscale.workloads.methane_plume.training import plume_probability

        pred = plume_probability(tile_output(output)) >= 0.5
        positive = batch[1] == 1
        found = {
            "accuracy": (pred == positive).float().mean(),
            "positive_rate": positive.float().mean(),
            "recall_at_0.5": (pred & positive).float().sum() / positive.float().sum().clamp(min=1),
        }
        if isinstance(output, DenseOutput):
            found["logit_mismatch"] = logit_mismatch(output)
        return found

    def build_optimizer(self, params, lr):
        from mlscale.workloads.methane_plume.consistency import ScheduledSGD

        cfg = self.config
        clip = cfg.dense_clip if self._dense else None
        steps = self._total_steps() if cfg.lr_schedule == "one-cycle" else None
        return ScheduledSGD(params, lr, 0.9, cfg.weight_decay, max_grad_norm=clip, total_steps=steps)

    def _total_steps(self) -> int:
        """Optimizer steps of the whole run, for the one-cycle schedule: each rank takes the fewest
        batches of any rank (round-robin shard, whole batches only), as the runner does."""
        from mlscale.workloads.methane_plume.training import read_labels

        run = self.ctx.run
        per_epoch = len(read_labels(self.config.tiles, "train")) // self.ctx.size // self.ctx.batch.per_rank
        if run.max_steps is not None:
            per_epoch = min(per_epoch, run.max_steps)
        return max(1, run.epochs * per_epoch + (run.warmup_steps or 0))

    # -- evaluation passes ------------------------------------------------------
    def eval_start(self, split: str) -> None:
        self._eval_probs, self._eval_labels = [], []

    def eval_batch(self, split: str, output, batch) -> None:
        if split == "inference":
            self._saliency[batch.row0 : batch.row0 + batch.rows] = output
            return
        from mlscale.workloads.methane_plume.training import plume_probability

        self._eval_probs.append(plume_probability(output).detach())
        self._eval_labels.append(batch[1].detach())

    def eval_end(self, split: str) -> dict:
        if split == "inference":
            return self._finish_map()
        self._threshold = self._best_f1()
        return dict(self._threshold)

    def _best_f1(self) -> dict:
        """Best-F1 threshold over every rank's tiles of this test pass (collective)."""
        from mlscale.workloads.methane_plume.training import best_f1_threshold

        probs = torch.cat(self._eval_probs).float().cpu().numpy()
        labels = torch.cat(self._eval_labels).cpu().numpy()
        gathered = self.ctx.comm.gather((probs, labels))
        best = None
        if self.ctx.rank == 0:
            best = best_f1_threshold(np.concatenate([g[0] for g in gathered]), np.concatenate([g[1] for g in gathered]))
        best = self.ctx.comm.bcast(best)
        return {
            "best_f1_threshold": best["threshold"],
            "best_f1": best["f1"],
            "precision_at_best_f1": best["precision"],
            "recall_at_best_f1": best["recall"],
        }

    def _finish_map(self) -> dict:
        """Gather the saliency rows (rows never computed under --max-steps stay NaN -> nodata);
        rank 0 writes the map into the run directory."""
        parts = self.ctx.comm.gather(self._saliency)
        facts = {
            "method": self.config.method,
            "arch": self.config.arch,
            "tile_size": self.config.tile_size,
            "batch": self.ctx.batch.per_rank,
            "cpu_cores": os.cpu_count(),
            "gpu_name": torch.cuda.get_device_name(self.ctx.device) if self.ctx.device.type == "cuda" else None,
        }
        if self.ctx.rank == 0:
            facts.update(write_saliency(self.ctx.outputs, np.concatenate(parts), self._image, self.config))
        return facts

    def info(self) -> dict:
        cfg = self.config
        info = {"arch": cfg.arch, "preset": cfg.preset, "tile_size": cfg.tile_size, "method": cfg.method}
        return {**info, **self._threshold}

    # -- checkpoints ---------------------------------------------------------
    def checkpoint_meta(self) -> dict:
        """The seed CLI's checkpoint: architecture, normalisation, tile size and best-F1 threshold."""
        cfg, run = self.config, self.ctx.run
        training = {"epochs": run.epochs, "lr": run.lr or self.default_lr, "lr_schedule": cfg.lr_schedule,
                    "weight_decay": cfg.weight_decay, "global_batch": self.ctx.batch.global_size,
                    "dense_consistency": cfg.dense_consistency}  # fmt: skip
        if self._dense:
            training.update(context=self._context(), dense_warmup=cfg.dense_warmup, dense_share=cfg.dense_share,
                            dense_clip=cfg.dense_clip)  # fmt: skip
        return {"format": FORMAT, "arch": cfg.arch, "preset": cfg.preset, "tile_size": cfg.tile_size,
                "threshold": self._threshold.get("best_f1_threshold"), "metrics": dict(self._threshold),
                "training": training}  # fmt: skip

    def check_checkpoint(self, meta: dict, path: str) -> None:
        if meta.get("arch", self.config.arch) != self.config.arch:
            raise UserError(f"{path}: holds a {meta['arch']} model, not --arch {self.config.arch}")

    # -- synthetic data ------------------------------------------------------
    @classmethod
    def write_data(cls, config: MethanePlumeData, out: Path) -> str:
        from mlscale.workloads.methane_plume.synth import make_flightline, write_flightline, write_tiles

        if min(config.lines, config.samples, config.tile_size) < 8 or config.flightlines < 0:
            raise UserError("mlscale data methane-plume: --lines, --samples and --tile-size must be at least 8")
        if config.context < 0 or config.context % 32:
            raise UserError(f"mlscale data methane-plume: --context {config.context}: must be a multiple of 32 (>= 0)")
        if not 0 <= config.positive_fraction <= 1:
            raise UserError("mlscale data methane-plume: --positive-fraction must be within [0, 1]")
        out = Path(out)
        rng = np.random.default_rng(config.seed)
        names = []
        for i in range(config.flightlines):
            data, plumes = make_flightline(rng, config.lines, config.samples, config.plumes)
            path = write_flightline(out / "flightlines" / f"ang_synth{i:03d}_ch4mf_img", data, plumes)
            names.append(path.name)
        counts = {"train": config.train_tiles, "test": config.test_tiles}
        positives = write_tiles(
            out / "tiles.h5", rng, counts, config.tile_size, config.positive_fraction, config.context
        )
        ring = f" with {config.context} px of context" if config.context else ""
        return (
            f"wrote {len(names)} flightline(s) of {config.lines}x{config.samples} to {out / 'flightlines'} and "
            f"{sum(counts.values())} tiles{ring} ({positives['train']}+{positives['test']} with plumes) to "
            f"{out / 'tiles.h5'}"
        )
