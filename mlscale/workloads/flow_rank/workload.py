"""flow-rank (seed 003, USGS/EcoSHEDS Flow Photo Explorer): a RankNet learns from annotated pairs of
time-lapse photos of one stream a score that ranks the photos by streamflow.

- data: images.csv, pairs.csv and JPEGs in the original's model-input layout (`station.py`); the
  train pairs are shuffled and sharded by a DistributedSampler, decoded and augmented in DataLoader
  workers (`loader.py`); the runner's test pass is the val pairs;
- model: ResNet-18 body, average pooling, MLP to one score (`model.py`); RankNet loss; SGD with
  momentum, backbone frozen until `--unfreeze-after`, ReduceLROnPlateau on the validation loss,
  the best-validation weights kept (`schedule.py`);
- each epoch, over every rank: validation loss and pair accuracy, and Kendall's tau between score
  and observed flow over every photo of val, test-in and test-out (`ranking.py`);
- inference scores every photo; rank 0 writes predictions.csv (images.csv's columns + score).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mlscale.bench.workload import Workload
from mlscale.errors import UserError
from mlscale.fileio import atomic_write
from mlscale.workloads.flow_rank import ranking
from mlscale.workloads.flow_rank.config import (
    CHECKPOINT_FORMAT,
    IMAGE_SPLITS,
    PREDICTIONS_FILE,
    SCORED_SPLITS,
    FlowRankConfig,
    FlowRankData,
)
from mlscale.workloads.flow_rank.loader import (
    EpochLoader,
    ImageDataset,
    Normalisation,
    PairDataset,
    channel_stats,
    decode,
)
from mlscale.workloads.flow_rank.model import RankNet, pair_accuracy, ranknet_loss, score_pair
from mlscale.workloads.flow_rank.schedule import Schedule, param_groups
from mlscale.workloads.flow_rank.station import StationData, read_station


class FlowRank(Workload):
    name = "flow-rank"
    description = "Flow Photo Explorer RankNet: ResNet-18 ranks time-lapse stream photos by flow (seed 003)"
    Config = FlowRankConfig
    DataConfig = FlowRankData
    default_lr = 1e-3
    accuracy_metric = "best_tau_test_in"
    accuracy_caption = (
        "Kendall's tau-b between score and observed flow over the test-in photos (annotation period, never "
        "annotated), of the model kept so far (lowest validation loss); train_accuracy stays empty"
    )

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self._station: StationData | None = None
        self._norm: Normalisation | None = None  # from --weights, else estimated from the train pairs
        self._net: RankNet | None = None
        self._schedule: Schedule | None = None
        self._scoring: EpochLoader | None = None
        self._outputs: list[torch.Tensor] = []
        self._rows: list[torch.Tensor] = []

    # -- data ----------------------------------------------------------------
    def _read(self) -> StationData:
        if self._station is None:
            cfg = self.config
            pairs_needed = self.ctx.run.mode != "inference" or self._norm is None
            self._station = read_station(cfg.data, cfg.images, with_pairs=pairs_needed)
        return self._station

    def _normalisation(self) -> Normalisation:
        """The seed's statistics: mean over up to --stats-images training pairs' first photos (unique,
        in random order) of each photo's channel mean and std. Collective."""
        if self._norm is None:
            station, cfg = self._read(), self.config
            first = str(station.images_dir / station.pairs["filename_1"].iloc[0])
            height, width = decode(first, f"{station.pairs_csv} row 1, filename_1").shape[1:]
            train = station.pairs_of("train").drop_duplicates("filename_1")
            sample = np.random.default_rng(self.ctx.run.seed).permutation(len(train))[: cfg.stats_images]
            chosen = train.iloc[np.sort(sample)]
            paths = [str(station.images_dir / f) for f in chosen["filename_1"]]
            origins = [f"{station.pairs_csv} row {i + 1}, filename_1" for i in chosen.index]
            mean, std = channel_stats(paths, origins, self.ctx.comm)
            self._norm = Normalisation(cfg.input_size, width / height, mean, std)
            self.ctx.log.info("normalisation from %d training photos: mean %s, std %s", len(paths),
                              np.round(mean, 3).tolist(), np.round(std, 3).tolist())  # fmt: skip
        return self._norm

    def _loader(self, dataset, shuffle: bool) -> EpochLoader:
        ctx = self.ctx
        return EpochLoader(dataset, ctx, ctx.batch.per_rank, shuffle, self.config.workers, ctx.run.seed)

    def _photos(self, images: pd.DataFrame) -> EpochLoader:
        station = self._read()
        return self._loader(ImageDataset(images, station.images_dir, station.images_csv,
                                         self._normalisation().transforms(False)), shuffle=False)  # fmt: skip

    def build_data(self, split: str) -> EpochLoader:
        station, norm = self._read(), self._normalisation()
        if split == "inference":
            return self._photos(station.images)
        which = "train" if split == "train" else "val"
        pairs = station.pairs_of(which)
        if pairs.empty:
            raise UserError(f"{station.pairs_csv}: no {which} pairs")
        transform = norm.transforms(self.config.augment and split == "train")
        return self._loader(PairDataset(pairs, station.images_dir, station.pairs_csv, transform), split == "train")

    # -- model ---------------------------------------------------------------
    def build_model(self) -> RankNet:
        torch.manual_seed(self.ctx.run.seed)
        self._net = RankNet(self.config.backbone)
        return self._net

    def build_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        cfg = self.config
        optimizer = torch.optim.SGD(param_groups(params, self._net.backbone), lr=lr, momentum=0.9)
        self._schedule = Schedule(optimizer, self._net, cfg.unfreeze_after, cfg.plateau_patience,
                                  cfg.plateau_factor, self.ctx.run.epochs)  # fmt: skip
        return optimizer

    def forward(self, model, batch):
        return model(batch[0]) if len(batch) == 2 else score_pair(model, batch[0], batch[1])

    def loss(self, output, batch):
        return ranknet_loss(output, batch[2])

    def metrics(self, output, batch):
        return {"pair_accuracy": pair_accuracy(output, batch[2])}

    # -- evaluation passes ------------------------------------------------------
    def eval_start(self, split: str) -> None:
        self._outputs, self._rows = [], []

    def eval_batch(self, split: str, output, batch) -> None:
        self._outputs.append(output.detach())  # stays on the device until eval_end
        self._rows.append(batch[-1])

    def _collected(self, pairs: bool) -> tuple[np.ndarray, np.ndarray]:
        """This rank's rows and scores of the pass: (n, 2) for pairs, (n,) for photos."""
        if not self._rows:
            return np.zeros(0, np.int64), np.zeros((0, 2) if pairs else 0)
        scores = torch.cat(self._outputs, dim=-1).float().cpu().numpy()
        return torch.cat(self._rows).cpu().numpy(), scores.T if scores.ndim == 2 else scores

    def eval_end(self, split: str) -> dict:
        return self._finish_inference() if split == "inference" else self._finish_epoch()

    def _score_photos(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Score every photo of the scored splits with the current weights, shared out over the ranks
        and gathered on rank 0 (collective)."""
        station = self._read()
        if self._scoring is None:
            self._scoring = self._photos(station.images[station.images["split"].isin(SCORED_SPLITS)])
        net, rows, scores = self._net, [], []
        net.eval()
        with torch.no_grad():
            for images, row in self._scoring:
                scores.append(net(images.to(self.ctx.device)).float().cpu())
                rows.append(row)
        mine = (torch.cat(rows).numpy(), torch.cat(scores).numpy()) if rows else (np.zeros(0, int), np.zeros(0))
        return ranking.gather_rows(self.ctx.comm, *mine)

    def _finish_epoch(self) -> dict:
        station, comm = self._read(), self.ctx.comm
        pairs = ranking.gather_rows(comm, *self._collected(pairs=True))
        photos = self._score_photos()
        figures = None
        if comm.rank == 0:
            figures = ranking.pair_figures(station.pairs, *pairs)
            scores = pd.Series(photos[1], index=station.images["image_id"].to_numpy()[photos[0]])
            figures.update(ranking.split_taus(station.images, scores, SCORED_SPLITS))
        figures = comm.bcast(figures)
        figures.update(self._schedule.end_epoch(figures["val_loss"], figures))
        if self._schedule.epoch == self.ctx.run.epochs and self._schedule.best_epoch:
            self.ctx.log.info("kept the weights of epoch %d (validation loss %.4f)", self._schedule.best_epoch,
                              self._schedule.best_loss)  # fmt: skip
        return figures

    def _finish_inference(self) -> dict:
        station, comm = self._read(), self.ctx.comm
        gathered = ranking.gather_rows(comm, *self._collected(pairs=False))
        facts = None
        if comm.rank == 0:
            table = ranking.predictions(station.images, *gathered)
            if self.ctx.outputs is not None:
                atomic_write(Path(self.ctx.outputs) / PREDICTIONS_FILE, table.to_csv(index=False))
            scores = table.set_index("image_id")["score"]
            facts = {"predictions": PREDICTIONS_FILE, "scored_images": int(table["score"].notna().sum()),
                     **ranking.split_taus(station.images, scores, IMAGE_SPLITS)}  # fmt: skip
        return comm.bcast(facts)

    def info(self) -> dict:
        cfg = self.config
        facts: dict = {"model": f"RankNet ({cfg.backbone})", "backbone": cfg.backbone, "input_size": cfg.input_size}
        if self._norm is not None:
            facts.update(self._norm.meta())
        if self._station is not None and self._station.pairs is not None:
            facts.update({f"{s}_pairs": int((self._station.pairs["split"] == s).sum()) for s in ("train", "val")})
        if self._schedule is not None and self._schedule.best_epoch:
            facts.update(best_epoch=self._schedule.best_epoch, best_val_loss=self._schedule.best_loss)
        return facts

    # -- checkpoints ---------------------------------------------------------
    def train_state(self):
        return self._schedule.state_dict() if self._schedule is not None else None

    def load_train_state(self, state) -> None:
        self._schedule.load_state_dict(state)

    def checkpoint_meta(self) -> dict:
        """The normalisation and sizes the weights need, and which epoch they are from."""
        meta = {"format": CHECKPOINT_FORMAT, "backbone": self.config.backbone}
        if self._norm is not None:
            meta.update(self._norm.meta())
        if self._schedule is not None and self._schedule.best_epoch:
            best = self._schedule
            taus = {k: v for k, v in best.best_figures.items() if k.startswith("tau_")}
            meta.update(best_epoch=best.best_epoch, best_val_loss=float(best.best_loss), metrics=taus)
        return meta

    def check_checkpoint(self, meta: dict, path: str) -> None:
        if meta.get("format") != CHECKPOINT_FORMAT:
            return  # a plain state_dict: the statistics come from the data
        if meta.get("backbone") != self.config.backbone:
            raise UserError(f"{path}: holds a {meta.get('backbone')} RankNet, not --backbone {self.config.backbone}")
        self._norm = Normalisation.from_meta(meta)
        if self._norm.input_size != self.config.input_size:
            self.ctx.log.info("%s: using its input size %d, not --input-size %d", path, self._norm.input_size,
                              self.config.input_size)  # fmt: skip

    # -- synthetic data ------------------------------------------------------
    @classmethod
    def write_data(cls, config: FlowRankData, out: Path) -> str:
        from mlscale.workloads.flow_rank.synth import write_station

        return write_station(config, Path(out))
