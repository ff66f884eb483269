"""cloud-mask (seed 001, STFC SLSTR cloud masking): a U-Net segments clouds in Sentinel-3 SLSTR scenes.

- train: converted HDF5 files (`mlscale cloud-mask convert`), 80/20 file split, per-rank shards,
  256x256 patches of 9 normalised channels, cached in memory after the first epoch (`pipeline`);
  the seed's U-Net, weighted cross-entropy (pos_weight 0.5) on the patch less a 15-pixel border,
  Adam 1e-3, binary accuracy.
- inference: raw .SEN3 products (`--products`), overlapping patches stitched into one mask per
  product (`inference`); rank 0 writes `<product>.h5` into the run directory. A sample is
  one product (an image), as in the seed's inference table.

One workload, two frameworks: `--framework torch` runs on the torch engine, `--framework tf` on
the TensorFlow engine; the data pipeline and the stitching are numpy and shared. No framework
is imported here at module level.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from mlscale.bench.workload import Workload
from mlscale.errors import UserError
from mlscale.workloads.cloud_mask.config import ENGINES, CloudMaskConfig, CloudMaskData
from mlscale.workloads.cloud_mask.inference import ProductBatches, ProductPatches, check_tiling, stitch, write_masks
from mlscale.workloads.cloud_mask.pipeline import CHANNELS, PatchBatches, list_files, split_files

FORMAT = "mlscale-cloud-mask-1"
PARTS = {"torch": "torch_parts", "tf": "tf_parts"}


class CloudMask(Workload):
    name = "cloud-mask"
    description = "SLSTR cloud masking: a 9-channel U-Net on Sentinel-3 scenes, PyTorch or TensorFlow (seed 001)"
    Config = CloudMaskConfig
    DataConfig = CloudMaskData
    default_lr = 1e-3
    accuracy_caption = "accuracy: per-pixel binary accuracy of the cloud mask at probability 0.5, patch borders cropped"

    @classmethod
    def engine_for(cls, config: CloudMaskConfig) -> str:
        return ENGINES[config.framework]

    def __init__(self, config: CloudMaskConfig, ctx):
        super().__init__(config, ctx)
        check_tiling(config.patch_size, config.infer_border)
        if not 0 <= config.loss_border < config.patch_size // 2:
            raise UserError(f"--loss-border must be within [0, patch/2), got {config.loss_border}")
        if not 0 < config.test_fraction < 1:
            raise UserError(f"--test-fraction must be within (0, 1), got {config.test_fraction}")
        if config.width < 1:
            raise UserError(f"--width must be at least 1, got {config.width}")
        self.parts = importlib.import_module(f"mlscale.workloads.cloud_mask.{PARTS[config.framework]}")
        self.loaders: dict[str, PatchBatches] = {}
        self.masks: dict[str, np.ndarray] = {}

    @property
    def channels_last(self) -> bool:
        """NHWC batches: Keras convolutions take them; torch on the CPU takes them as channels_last
        tensors, where oneDNN's convolutions run about twice as fast as in NCHW (docs/benchmarks.md)."""
        return self.config.framework == "tf" or getattr(self.ctx.device, "type", "cpu") == "cpu"

    def _to_tensor(self, array: np.ndarray):
        return self.parts.to_tensor(array, nhwc=self.channels_last)

    # -- data ----------------------------------------------------------------
    def build_data(self, split: str):
        cfg, ctx = self.config, self.ctx
        if split == "inference":
            return ProductBatches(cfg.products, ctx.rank, ctx.size, cfg.patch_size, cfg.infer_border,
                                  channels_last=self.channels_last, convert=self._to_tensor)  # fmt: skip
        files = split_files(list_files(cfg.data), cfg.test_fraction, cfg.split_seed)[split]
        loader = PatchBatches(
            files[ctx.rank :: ctx.size], cfg.patch_size, ctx.batch.per_rank, train=split == "train",
            cache=cfg.cache, seed=ctx.run.seed + ctx.rank, channels_last=self.channels_last,
            convert=self._to_tensor,
        )  # fmt: skip
        self.loaders[split] = loader
        return loader

    def to_device(self, batch, device, non_blocking=True):
        if isinstance(batch, ProductPatches):
            batch.patches = self.parts.move(batch.patches, device)
            return batch
        return tuple(self.parts.move(t, device) for t in batch)

    def batch_size_of(self, batch) -> int:
        return 1 if isinstance(batch, ProductPatches) else len(batch[0])

    # -- model ---------------------------------------------------------------
    def build_model(self):
        return self.parts.build_model(CHANNELS, self.config.width, self.ctx.run.seed, channels_last=self.channels_last)

    def build_optimizer(self, params, lr):
        return self.parts.adam(params, lr)

    def forward(self, model, batch):
        if isinstance(batch, ProductPatches):
            return self.parts.predict(model, batch.patches, self.ctx.batch.per_rank)
        return model(batch[0])

    def loss(self, output, batch):
        return self.parts.loss(output, batch[1], self.config.loss_border, self.config.pos_weight)

    def metrics(self, output, batch):
        return {"accuracy": self.parts.accuracy(output, batch[1], self.config.loss_border)}

    # -- evaluation passes ------------------------------------------------------
    def eval_start(self, split: str) -> None:
        self.masks = {}

    def eval_batch(self, split: str, output, batch) -> None:
        if split == "inference":
            self.masks[batch.name] = stitch(np.asarray(output), batch.tiling).astype(np.float32)

    def eval_end(self, split: str) -> dict:
        if split != "inference":
            return {}
        parts = self.ctx.comm.gather(self.masks)  # collective: every rank's masks to rank 0
        facts = {"framework": self.config.framework, "patch_size": self.config.patch_size,
                 "stride": self.config.patch_size - 2 * self.config.infer_border}  # fmt: skip
        if self.ctx.rank == 0:
            masks = {name: mask for part in parts for name, mask in part.items()}
            facts["products"] = len(write_masks(Path(self.ctx.outputs), masks))
            facts["cloud_fraction"] = float(np.mean([(m >= 0.5).mean() for m in masks.values()])) if masks else None
        return self.ctx.comm.bcast(facts)

    def io_stats(self) -> dict[str, float]:
        return {"bytes_read": float(sum(loader.bytes_read for loader in self.loaders.values()))}

    def info(self) -> dict:
        cfg = self.config
        return {"model": "U-Net", "framework": cfg.framework, "width": cfg.width, "patch_size": cfg.patch_size,
                "cache": cfg.cache, "pos_weight": cfg.pos_weight}  # fmt: skip

    # -- checkpoints ---------------------------------------------------------
    def checkpoint_meta(self) -> dict:
        return {"format": FORMAT, "framework": self.config.framework, "width": self.config.width}

    def check_checkpoint(self, meta: dict, path: str) -> None:
        if meta.get("width", self.config.width) != self.config.width:
            raise UserError(f"{path}: holds a U-Net of --width {meta['width']}, not {self.config.width}")

    # -- synthetic data ------------------------------------------------------
    @classmethod
    def write_data(cls, config: CloudMaskData, out: Path) -> str:
        from mlscale.workloads.cloud_mask.generate import write_data

        return write_data(config, out)
