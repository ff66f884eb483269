"""cosmic-tagger: UResNet segmentation of neutrino / cosmic / background pixels
in three wire planes (seed 004, CosmicTagger), on larcv3 sparse2d files.

Data: `--data` is a larcv3 file or a directory holding cosmic_tagging_train.h5
and cosmic_tagging_test.h5 (what `mlscale data cosmic-tagger` writes). Loading
follows the original: the root rank reads each global batch and scatters
fixed-size sparse buffers (`--io-strategy scatter`), or scatters entry indices
(`indices`), or every rank reads a static shard (`shard`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from mlscale.bench.workload import Workload
from mlscale.errors import UserError
from mlscale.io.larcv import LarcvFile, LarcvWriter, SparseEvents
from mlscale.workloads.cosmic_tagger.config import (
    PREDICTION_FILE,
    TEST_FILE,
    TRAIN_FILE,
    CosmicTaggerConfig,
    CosmicTaggerDataConfig,
)
from mlscale.workloads.cosmic_tagger.loader import CosmicLoader
from mlscale.workloads.cosmic_tagger.metrics import segmentation_loss, segmentation_metrics
from mlscale.workloads.cosmic_tagger.model import UResNet, UResNetConfig
from mlscale.workloads.cosmic_tagger.synth import EventGenerator, SynthParams, shape_for


def _model_config(cfg: CosmicTaggerConfig) -> UResNetConfig:
    names = {f.name for f in dataclasses.fields(UResNetConfig)}
    return UResNetConfig(**{k: v for k, v in dataclasses.asdict(cfg).items() if k in names})


def resolve_files(cfg: CosmicTaggerConfig) -> tuple[Path, Path]:
    if not cfg.data:
        raise UserError("cosmic-tagger needs --data PATH (write a synthetic set with `mlscale data cosmic-tagger`)")
    data = Path(cfg.data)
    if data.is_dir():
        train, test = data / TRAIN_FILE, data / TEST_FILE
        for f in (train, test):
            if not f.is_file():
                raise UserError(f"{f}: no such file (a --data directory must hold {TRAIN_FILE} and {TEST_FILE})")
    else:
        train = test = data
    if cfg.test_data:
        test = Path(cfg.test_data)
    return train, test


class CosmicTagger(Workload):
    name = "cosmic-tagger"
    description = __doc__.split("\n\n")[0].replace("\n", " ")
    Config = CosmicTaggerConfig
    DataConfig = CosmicTaggerDataConfig
    accuracy_metric = "non_bkg_accuracy"
    accuracy_caption = (
        "non-background accuracy: share of pixels labelled cosmic or neutrino that are predicted correctly "
        "(mean of the three planes)"
    )
    default_lr = 3e-4
    modes = ("train", "inference", "iotest")

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.loaders: dict[str, CosmicLoader] = {}
        self.predictions: list[tuple[np.ndarray, SparseEvents]] = []

    # -- data ----------------------------------------------------------------
    def build_data(self, split: str) -> CosmicLoader:
        cfg, run = self.config, self.ctx.run
        train, test = resolve_files(cfg)
        loader = CosmicLoader(
            train if split == "train" else test,
            self.ctx.comm,
            global_batch=self.ctx.batch.global_size,
            strategy=cfg.io_strategy,
            image_producer=cfg.image_producer,
            label_producer=cfg.label_producer,
            downsample=2 if cfg.resolution == "downsampled" else 1,
            shuffle=cfg.shuffle and split == "train",
            seed=run.seed,
            prefetch=cfg.prefetch,
        )
        self.loaders[split] = loader
        return loader

    def io_stats(self) -> dict[str, float]:
        """Disk and network bytes behind the iotest figures (the runner sums them over ranks)."""
        stats = [loader.stats for loader in self.loaders.values()]
        return {
            "events_read": float(sum(s.events_read for s in stats)),
            "disk_bytes": float(sum(s.bytes_read for s in stats)),
            "scatter_bytes": float(sum(s.bytes_received for s in stats)),
        }

    # -- model ---------------------------------------------------------------
    def build_model(self) -> torch.nn.Module:
        return UResNet(_model_config(self.config))

    def build_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr)

    def loss(self, output, batch) -> torch.Tensor:
        return segmentation_loss(output, batch[1], self.config.loss_weighting)

    def metrics(self, output, batch) -> dict[str, torch.Tensor]:
        return segmentation_metrics(output, batch[1])

    def info(self) -> dict:
        cfg = self.config
        return {
            "model": "UResNet",
            "n_initial_filters": cfg.n_initial_filters,
            "network_depth": cfg.network_depth,
            "resolution": cfg.resolution,
            "io_strategy": cfg.io_strategy,
            "loss_weighting": cfg.loss_weighting,
            # per-plane: planes run one after another (batch norm per plane, and on CPU the faster layout);
            # pooled: stacked in one batch
            "plane_norm": cfg.plane_norm,
        }

    # -- inference output ----------------------------------------------------
    def eval_start(self, split: str) -> None:
        self.predictions = []

    def eval_batch(self, split: str, output, batch) -> None:
        """Inference: keep each event's predicted label on every pixel that holds charge."""
        if split != "inference":
            return
        charge = batch[0].detach().cpu().numpy()
        pred = output.argmax(dim=1).to(torch.uint8).cpu().numpy()
        n, planes, h, w = charge.shape
        rows, pixels = np.nonzero(charge.reshape(n * planes, h * w) > 0)
        y, x = pixels // w, pixels % w
        ids = x * h + y  # larcv id of the pixel
        order = np.lexsort((ids, rows))  # larcv3 keeps each plane's voxels sorted by id
        rows, ids, pixels = rows[order], ids[order], pixels[order]
        values = pred.reshape(n * planes, h * w)[rows, pixels].astype(np.float32)
        counts = np.bincount(rows, minlength=n * planes).reshape(n, planes)
        self.predictions.append((batch[2].cpu().numpy(), SparseEvents(counts, ids, values, (h, w))))

    def eval_end(self, split: str) -> dict:
        """Inference: gather every rank's predictions; rank 0 writes them as a larcv3 sparse2d producer."""
        if split != "inference":
            return {}
        everyone = self.ctx.comm.gather(self.predictions)
        self.predictions = []
        if everyone is None:
            return {}
        parts = [p for rank in everyone for p in rank]
        if not parts:
            return {}
        entries = np.concatenate([e for e, _ in parts])
        events = SparseEvents(
            np.concatenate([s.counts for _, s in parts]),
            np.concatenate([s.ids for _, s in parts]),
            np.concatenate([s.values for _, s in parts]),
            parts[0][1].shape,
        )
        order = np.argsort(entries, kind="stable")
        producer = f"{self.config.label_producer}_prediction"
        _, source = resolve_files(self.config)
        with LarcvFile(source) as f:
            event_ids = f.event_ids()[entries[order]]
        with LarcvWriter(self.ctx.outputs / PREDICTION_FILE, [producer]) as writer:
            writer.append({producer: events.select(order)}, event_ids)
        return {"prediction_file": PREDICTION_FILE, "prediction_producer": producer, "events_written": len(order)}

    # -- synthetic data ------------------------------------------------------
    @classmethod
    def write_data(cls, config: CosmicTaggerDataConfig, out: Path) -> str:
        if config.events < 1 or config.test_events < 0:
            raise UserError("--events must be at least 1 and --test-events at least 0")
        if bool(config.height) != bool(config.width) or min(config.height, config.width) < 0:
            raise UserError("--height and --width go together and must be positive")
        shape = shape_for(config.resolution, config.height, config.width)
        params = SynthParams(shape, config.cosmics, config.neutrino_fraction, config.noise)
        out.mkdir(parents=True, exist_ok=True)
        voxels = 0
        for name, n, seed in (
            (TRAIN_FILE, config.events, config.seed),
            (TEST_FILE, config.test_events, config.seed + 1),
        ):
            gen = EventGenerator(params, seed)
            with LarcvWriter(out / name, ["sbndwire", "sbnd_cosmicseg"]) as writer:
                for start in range(0, n, 32):  # blocks bound the memory at full resolution
                    charge, labels = gen.events(min(32, n - start))
                    writer.append(
                        {"sbndwire": charge, "sbnd_cosmicseg": labels}, np.arange(start, start + charge.n_events)
                    )
                    voxels += len(charge.ids)
        total = config.events + config.test_events
        return (
            f"wrote {config.events} training and {config.test_events} test events ({shape[0]}x{shape[1]} planes, "
            f"{voxels / max(total, 1) / 3:.0f} voxels per plane on average) to {out / TRAIN_FILE} and {out / TEST_FILE}"
        )
