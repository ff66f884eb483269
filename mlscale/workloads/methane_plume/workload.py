"""methane-plume (seed 000, Carbon Mapper CNN): a CH4 tile classifier turned into a per-pixel plume
saliency map over an AVIRIS-NG flightline.

- train: 256x256 CH4 tiles from tiles.h5 (`mlscale data methane-plume`), GoogLeNet (1 channel,
  2 classes, aux heads) or the padding-free `tilenet`, class-weighted cross-entropy, SGD momentum;
  the record's workload_info holds the best-F1 threshold on the test tiles.
- inference: one flightline (ENVI), rows split across ranks (scattered from rank 0, with the T-1
  halo rows each block needs), saliency by --method cnn|fcn|exact, gathered on rank 0 and written
  as `<stem>_saliency.img/.hdr` into the run directory. A sample is one output pixel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mlscale.bench.workload import Workload
from mlscale.errors import UserError
from mlscale.workloads.methane_plume.checkpoint import (
    build_tile_classifier,
    check_tile_size,
    load_checkpoint,
    save_checkpoint,
)
from mlscale.workloads.methane_plume.config import MethanePlumeConfig, MethanePlumeData


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
        self._model_ref: torch.nn.Module | None = None
        self._image = None
        self._block: tuple[int, int] = (0, 0)
        self._final_info: dict = {}

    # -- data ----------------------------------------------------------------
    def build_data(self, split: str):
        if split == "inference":
            return self._inference_batches()
        from mlscale.workloads.methane_plume.training import TileDataset, class_weights, read_labels

        cfg, ctx = self.config, self.ctx
        if not cfg.tiles:
            raise UserError("methane-plume: --tiles H5 is needed to train (see `mlscale data methane-plume`)")
        h5_split = "train" if split == "train" else "test"
        labels = read_labels(cfg.tiles, h5_split)
        if split == "train":
            self._weights = class_weights(labels)
        mine = np.arange(ctx.rank, len(labels), ctx.size)  # round-robin shard
        dataset = TileDataset(
            cfg.tiles,
            h5_split,
            cfg.preset,
            mine,
            augment=cfg.augment and split == "train",
            seed=ctx.run.seed + ctx.rank,
        )
        gen = torch.Generator().manual_seed(ctx.run.seed + ctx.rank)
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=ctx.run.batch_size,
            shuffle=split == "train",
            drop_last=split == "train",
            num_workers=cfg.workers,
            generator=gen,
        )

    def _inference_batches(self):
        """Rank 0 reads the flightline; every rank gets its block of rows plus the T-1 halo rows, and for
        fcn up to a tile of context rows on each side where its block meets another rank's."""
        from mlscale.io.envi import read_envi
        from mlscale.workloads.methane_plume.saliency import context_rows, pad_for_tiles, row_blocks, standardise
        from mlscale.workloads.methane_plume.synth import CH4_BAND

        cfg, comm, tile = self.config, self.ctx.comm, self.config.tile_size
        context = context_rows(cfg.method, tile)
        if not cfg.flightline:
            raise UserError("methane-plume: --flightline IMG is needed for inference")
        meta = None
        slabs = None
        if comm.rank == 0:
            image = read_envi(cfg.flightline, bands=[CH4_BAND], expect_bands=4)
            padded = pad_for_tiles(standardise(image.data[0], cfg.preset), tile, cfg.preset)
            lines = image.data.shape[1]  # context may come from rows beyond --rows: they are real
            if cfg.rows:  # the first rows only, but their tiles still see the real rows below them
                image.data = image.data[:, : cfg.rows]
            self._image = image
            blocks = [
                (a, b, min(context, a), min(context, lines - b)) for a, b in row_blocks(image.data.shape[1], comm.size)
            ]
            spans = [(a - top, b + tile - 1 + bottom) for a, b, top, bottom in blocks]
            most = max(hi - lo for lo, hi in spans)
            slabs = [np.pad(padded[lo:hi], ((0, most - (hi - lo)), (0, 0)), mode="edge") for lo, hi in spans]
            meta = blocks
        blocks = comm.bcast(meta)
        slab = comm.scatter_array(slabs)
        a, b, top, bottom = blocks[comm.rank]
        self._block = (a, b)
        self._saliency = np.full((b - a, slab.shape[1] - tile + 1), np.nan, dtype=np.float32)
        # Every rank must take the same number of steps: strips are counted on the largest block.
        most = max(hi - lo for lo, hi, _, _ in blocks)
        return SlabBatches(slab[: top + b - a + tile - 1 + bottom], cfg, self.ctx.run.batch_size, most, top, bottom)

    # -- model ---------------------------------------------------------------
    def build_model(self):
        cfg = self.config
        if cfg.checkpoint:
            model, meta = load_checkpoint(cfg.checkpoint, cfg.arch)
            if meta.get("arch", cfg.arch) != cfg.arch:
                raise UserError(f"{cfg.checkpoint}: holds a {meta['arch']} model, not --arch {cfg.arch}")
        else:
            torch.manual_seed(self.ctx.run.seed)
            model = build_tile_classifier(cfg.arch)
        check_tile_size(model, cfg.arch, cfg.tile_size)
        self._model_ref = model
        return model

    def forward(self, model, batch):
        if isinstance(batch, SlabBatch):
            if self._method_fn is None:
                from mlscale.workloads.methane_plume.saliency import build_method

                bare = getattr(model, "module", model)
                bare = getattr(bare, "_orig_mod", bare)  # torch.compile
                self._method_fn = build_method(
                    self.config.method, bare, self.config.tile_size, self.ctx.run.batch_size, self.ctx.device
                )
            return self._method_fn(batch.slab, top=batch.top, bottom=batch.bottom)
        return model(batch[0])

    def to_device(self, batch, device, non_blocking=True):
        return batch if isinstance(batch, SlabBatch) else super().to_device(batch, device, non_blocking)

    def batch_size_of(self, batch) -> int:
        return batch.pixels if isinstance(batch, SlabBatch) else len(batch[0])

    def loss(self, output, batch):
        from mlscale.workloads.methane_plume.training import plume_loss

        if self._weights is None:
            self._weights = torch.ones(2)
        return plume_loss(output, batch[1], self._weights)

    def metrics(self, output, batch):
        from mlscale.workloads.methane_plume.training import plume_probability

        prob = plume_probability(output)
        labels = batch[1]
        logits = output.logits if hasattr(output, "logits") else output
        if not logits.requires_grad:
            # An evaluation step: keep the scores for the best-F1 threshold (reset each test pass).
            if getattr(self, "_last_was_train", True):
                self._eval_probs, self._eval_labels = [], []
            self._eval_probs.append(prob.detach())
            self._eval_labels.append(labels.detach())
            self._last_was_train = False
        else:
            self._last_was_train = True
        pred = prob >= 0.5
        positive = labels == 1
        return {
            "accuracy": (pred == positive).float().mean(),
            "positive_rate": positive.float().mean(),
            "recall_at_0.5": (pred & positive).float().sum() / positive.float().sum().clamp(min=1),
        }

    def on_inference_batch(self, output, batch):
        self._saliency[batch.row0 : batch.row0 + batch.rows] = output

    def finish_inference(self, out_dir: Path) -> dict:
        from mlscale.io.envi import write_envi
        from mlscale.workloads.methane_plume.saliency import finish_map

        parts = self.ctx.comm.gather(self._saliency)  # rows never computed (--max-steps) stay NaN -> nodata
        facts = {
            "method": self.config.method,
            "arch": self.config.arch,
            "tile_size": self.config.tile_size,
            "batch": self.ctx.run.batch_size,
            "cpu_cores": os.cpu_count(),
            "gpu_name": _gpu_name(self.ctx.device),
        }
        if self.ctx.rank != 0:
            return facts
        saliency = np.concatenate(parts)
        valid = self._image.valid & np.isfinite(saliency)
        saliency = finish_map(np.nan_to_num(saliency), valid)
        stem = Path(self.config.flightline).name.removesuffix(".img")
        name = f"{stem}_saliency.img"
        write_envi(
            Path(out_dir) / name,
            saliency,
            band_names=["plume saliency"],
            georef=self._image.georef,
            description=f"plume saliency ({self.config.method}) of {stem}",
        )
        lines, samples = saliency.shape
        facts.update(
            {
                "flightline": str(self.config.flightline),
                "saliency": name,
                "flightline_lines": lines,
                "flightline_samples": samples,
                "max_saliency": float(saliency[saliency != -9999].max(initial=0)),
            }
        )
        return facts

    def build_optimizer(self, params, lr):
        return torch.optim.SGD(params, lr=lr, momentum=0.9)

    def info(self) -> dict:
        info = {
            "arch": self.config.arch,
            "preset": self.config.preset,
            "tile_size": self.config.tile_size,
            "method": self.config.method,
        }
        if self._eval_probs:
            self._final_info = self._threshold_info()
        return {**info, **self._final_info}

    def _threshold_info(self) -> dict:
        """Best-F1 threshold over every rank's last test pass (called on every rank)."""
        from mlscale.workloads.methane_plume.training import best_f1_threshold

        probs = torch.cat(self._eval_probs).float().cpu().numpy()
        labels = torch.cat(self._eval_labels).cpu().numpy()
        gathered = self.ctx.comm.gather((probs, labels))
        best = None
        if self.ctx.rank == 0:
            best = best_f1_threshold(np.concatenate([g[0] for g in gathered]), np.concatenate([g[1] for g in gathered]))
        best = self.ctx.comm.bcast(best)
        out = {
            "best_f1_threshold": best["threshold"],
            "best_f1": best["f1"],
            "precision_at_best_f1": best["precision"],
            "recall_at_best_f1": best["recall"],
        }
        if self.config.save_checkpoint and self.ctx.rank == 0 and self._model_ref is not None:
            save_checkpoint(
                self.config.save_checkpoint,
                self._model_ref,
                self.config.arch,
                self.config.preset,
                self.config.tile_size,
                best["threshold"],
                out,
            )
        return out

    # -- synthetic data ------------------------------------------------------
    @classmethod
    def write_data(cls, config: MethanePlumeData, out: Path) -> str:
        from mlscale.workloads.methane_plume.synth import make_flightline, write_flightline, write_tiles

        if min(config.lines, config.samples, config.tile_size) < 8 or config.flightlines < 0:
            raise UserError("mlscale data methane-plume: --lines, --samples and --tile-size must be at least 8")
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
        positives = write_tiles(out / "tiles.h5", rng, counts, config.tile_size, config.positive_fraction)
        return (
            f"wrote {len(names)} flightline(s) of {config.lines}x{config.samples} to {out / 'flightlines'} and "
            f"{sum(counts.values())} tiles ({positives['train']}+{positives['test']} with plumes) to "
            f"{out / 'tiles.h5'}"
        )


def _gpu_name(device: torch.device) -> str | None:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None


@dataclass
class SlabBatch:
    slab: np.ndarray  # padded rows for output rows [row0, row0 + rows): their tiles, and context rows
    row0: int
    rows: int
    cols: int
    top: int = 0  # rows of context above the first row's tile
    bottom: int = 0  # and below the last row's tile

    @property
    def pixels(self) -> int:
        return self.rows * self.cols


class SlabBatches:
    """This rank's inference batches: strips of output rows with their halo. For cnn a strip is as
    many rows as make about `batch` x 64 tiles; for dense methods the method strips internally. The slab
    holds `top` and `bottom` rows of context beyond the block's tiles; a strip takes what it can use."""

    def __init__(self, slab: np.ndarray, config: MethanePlumeConfig, batch: int, most_rows: int, top: int, bottom: int):
        from mlscale.workloads.methane_plume.saliency import context_rows, default_strip_rows

        tile = config.tile_size
        self.slab, self.tile, self.top = slab, tile, top
        self.context = context_rows(config.method, tile)
        self.rows, self.cols = slab.shape[0] - tile + 1 - top - bottom, slab.shape[1] - tile + 1
        if config.method == "cnn":
            strip = max(1, (64 * batch) // max(1, self.cols))
        else:
            strip = default_strip_rows(self.cols, tile, batch)
        self.count = -(-most_rows // strip)
        self.strip = max(1, -(-self.rows // self.count))

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        from mlscale.workloads.methane_plume.saliency import context_window

        for i in range(self.count):
            r0 = min(self.rows, i * self.strip)
            r1 = min(self.rows, r0 + self.strip)  # a short block may end with an empty strip
            start, stop, skip = context_window(r0, r1, self.top, len(self.slab), self.tile, self.context)
            bottom = stop - start - skip - (r1 - r0) - self.tile + 1
            yield SlabBatch(self.slab[start:stop], r0, r1 - r0, self.cols, skip, bottom)
