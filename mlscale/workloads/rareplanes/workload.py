"""rareplanes (seed 002): aircraft segmentation of RarePlanes synthetic aerial tiles with the seed's
model zoo, each with its own loss, optimizer and augmentation:

- fcn (Adam), deeplabv3 (AdamW), unet (AdamW): BCE-with-logits per pixel; every test pass
  accumulates a confusion matrix, summed over ranks: mIoU (Jaccard, macro) and Dice;
- maskrcnn (Adam): the sum of Mask R-CNN's loss dict; every test pass gathers the detections of all
  ranks to rank 0 for COCO segm and bbox AP (pycocotools), the seed's "mIoU" for this model. Batches
  are (list of images, list of target dicts). The test loss is computed in train mode (batch norm
  frozen, no gradients), the AP from a second, eval-mode forward.

Inference writes each tile's predicted mask (class 0/1, or Mask R-CNN's instance ids 1..N) as an
8-bit PNG named like the input tile's mask, under predicted_masks/ in the run directory.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mlscale.bench.workload import Workload
from mlscale.errors import UserError
from mlscale.workloads.rareplanes import data, metrics
from mlscale.workloads.rareplanes.config import PREDICTIONS, SEED_BACKBONE, RarePlanesConfig, RarePlanesData

SEMANTIC_CAPTION = "mIoU: Jaccard index over background and aircraft (macro), confusion matrix of the whole pass"
MASKRCNN_CAPTION = "segm AP: COCO mask AP@[.5:.95] (pycocotools) over the whole test pass; no train value"


class RarePlanes(Workload):
    name = "rareplanes"
    description = "aircraft segmentation in RarePlanes synthetic tiles: FCN, DeepLabV3, UNet, Mask R-CNN (seed 002)"
    Config = RarePlanesConfig
    DataConfig = RarePlanesData
    default_lr = 1e-4
    accuracy_metric = "miou"
    accuracy_caption = SEMANTIC_CAPTION

    def __init__(self, config: RarePlanesConfig, ctx):
        super().__init__(config, ctx)
        self.maskrcnn = config.model == "maskrcnn"
        if self.maskrcnn:  # the instance's choice shadows the class default: the record reads it
            self.accuracy_metric, self.accuracy_caption = "segm_ap", MASKRCNN_CAPTION
        self.backbone = config.backbone or SEED_BACKBONE.get(config.model, "")
        self.files: dict[str, list] = {}
        self.tile = 0
        self._eval: dict = {}
        self._facts: dict = {}

    # -- data ----------------------------------------------------------------
    def _files(self, split: str) -> list:
        if split not in self.files:
            cfg = self.config
            if not cfg.data and not (split == "inference" and cfg.inference_data):
                raise UserError("rareplanes needs --data DIR (tiles from `mlscale rareplanes tile`)")
            if split == "inference":
                folder = Path(cfg.inference_data) if cfg.inference_data else Path(cfg.data) / "test"
                self.files[split] = data.tile_files(folder, masks=False)
            else:
                self.files[split] = data.tile_files(Path(cfg.data) / split, masks=True)
        return self.files[split]

    def build_data(self, split: str):
        files = self._files(split)
        ctx, cfg = self.ctx, self.config
        return data.loader(files, ctx.rank, ctx.size, cfg.model, ctx.batch.per_rank, split == "train", cfg.augment,
                           cfg.workers, ctx.run.seed)  # fmt: skip

    def batch_size_of(self, batch) -> int:
        return len(batch[0])

    # -- model ---------------------------------------------------------------
    def build_model(self):
        from mlscale.workloads.rareplanes.models import build

        cfg, run = self.config, self.ctx.run
        if self.maskrcnn and run.cuda_graphs:
            raise UserError("--cuda-graphs: Mask R-CNN's shapes change every step (proposals, instances per tile), "
                            "so its step cannot be captured in a CUDA graph")  # fmt: skip
        # Mask R-CNN is built for the tiles' size; without data (`mlscale info`) the seed's 512
        source = "train" if cfg.data else "inference" if cfg.inference_data else None
        self.tile = max(data.tile_shape(self._files(source))) if source else 512
        if cfg.model == "unet" and self.tile % 16:
            raise UserError(f"--model unet needs tiles whose side divides by 16; these are {self.tile}")
        return build(cfg.model, self.backbone, cfg.unet_width, cfg.head_width, self.tile)

    def build_optimizer(self, params, lr):
        adam = torch.optim.Adam if self.config.model in ("fcn", "maskrcnn") else torch.optim.AdamW
        return adam(params, lr=lr)

    def forward(self, model, batch):
        images, targets = batch
        if not self.maskrcnn:
            out = model(images)
            return out["out"] if isinstance(out, dict) else out
        if model.training:
            return model(images, targets)
        predictions = model(images)
        if not isinstance(targets, list):  # inference: no targets, no loss
            return predictions, {}
        with _train_mode_frozen_norm(model):
            losses = model(images, targets)
        return predictions, losses

    def loss(self, output, batch):
        if not self.maskrcnn:
            return metrics.segmentation_loss(output, batch[1])
        losses = output if isinstance(output, dict) else output[1]
        return sum(losses.values())

    def metrics(self, output, batch) -> dict:
        if self.maskrcnn:
            return {}
        miou, dice = metrics.miou_dice(metrics.confusion(metrics.predicted_class(output), batch[1]).float())
        return {"miou": miou, "dice": dice}

    # -- evaluation passes -----------------------------------------------------
    def eval_start(self, split: str) -> None:
        self._eval = {"cm": np.zeros((2, 2)), "coco": ([], [], []), "masks": []}

    def eval_batch(self, split: str, output, batch) -> None:
        if split == "inference":
            self._keep_masks(output, batch[1])
        elif self.maskrcnn:
            for prediction, target in zip(output[0], batch[1]):
                for part, values in zip(self._eval["coco"], metrics.coco_records(prediction, target)):
                    part.extend(values if isinstance(values, list) else [values])
        else:
            self._eval["cm"] += metrics.confusion(metrics.predicted_class(output), batch[1]).cpu().numpy()

    def eval_end(self, split: str) -> dict:
        comm = self.ctx.comm
        if split == "inference":
            return self._write_masks()
        if not self.maskrcnn:
            cm = comm.allreduce(self._eval["cm"], "sum")
            miou, dice = metrics.miou_dice(cm)
            result = {"miou": float(miou), "dice": float(dice), "pixels": float(cm.sum())}
        else:
            gathered = comm.gather(self._eval["coco"])
            result = None
            if comm.rank == 0:
                images, gts, dets = ([x for rank in gathered for x in rank[i]] for i in range(3))
                result = {**metrics.coco_ap(images, gts, dets), "tiles": float(len(images))}
            result = comm.bcast(result)
        self._facts = {f"last_test_{k}": v for k, v in result.items()}
        self.ctx.log.info("test: %s", ", ".join(f"{k} {v:.4g}" for k, v in result.items()))
        return result

    def _keep_masks(self, output, index) -> None:
        if self.maskrcnn:
            for prediction, i in zip(output[0], index.tolist()):
                keep = prediction["scores"] >= self.config.score_threshold
                ids = np.zeros(prediction["masks"].shape[-2:], np.uint8)
                for k, m in enumerate((prediction["masks"][keep][:255, 0] > 0.5).cpu().numpy(), 1):
                    ids[m & (ids == 0)] = k  # higher scores first: they keep overlapping pixels
                self._eval["masks"].append((i, _png(ids)))
        else:
            for pred, i in zip(metrics.predicted_class(output).to(torch.uint8).cpu().numpy(), index.tolist()):
                self._eval["masks"].append((i, _png(pred)))

    def _write_masks(self) -> dict:
        """Gather the PNG-encoded masks; rank 0 writes them, named after the input tiles."""
        from mlscale.fileio import atomic_write

        gathered = self.ctx.comm.gather(self._eval["masks"])
        if self.ctx.rank == 0:
            out = self.ctx.outputs / PREDICTIONS
            out.mkdir(parents=True, exist_ok=True)
            files = self._files("inference")
            for i, png in (m for rank in gathered for m in rank):
                atomic_write(out / f"{files[i][0].stem}_mask.png", png)
        written = int(self.ctx.comm.allreduce(float(len(self._eval["masks"])), "sum"))
        return {"predictions_dir": PREDICTIONS, "masks_written": written, "model": self.config.model}

    def info(self) -> dict:
        cfg, run, device = self.config, self.ctx.run, self.ctx.device
        amp = None
        if run.amp:
            amp = "float16 autocast + GradScaler" if device.type == "cuda" else "bfloat16 autocast (CPU)"
        return {"model": cfg.model, "backbone": self.backbone if cfg.model != "unet" else None,
                "unet_width": cfg.unet_width if cfg.model == "unet" else None,
                "head_width": cfg.head_width if self.maskrcnn else None, "tile_size": self.tile,
                "amp": amp, **self._facts}  # fmt: skip

    def checkpoint_meta(self) -> dict:
        cfg = self.config
        return {
            "model": cfg.model,
            "backbone": self.backbone,
            "unet_width": cfg.unet_width,
            "head_width": cfg.head_width,
        }

    def check_checkpoint(self, meta: dict, path: str) -> None:
        mine = self.checkpoint_meta()
        for key, value in meta.items():
            if key in mine and value != mine[key]:
                raise UserError(f"{path}: holds a {key} {value} model, this run has {key} {mine[key]}")

    # -- synthetic data ------------------------------------------------------
    @classmethod
    def write_data(cls, config: RarePlanesData, out: Path) -> str:
        from mlscale.workloads.rareplanes.synth import write_split

        lengths = (config.min_length, config.max_length)
        if not 4 <= lengths[0] <= lengths[1]:
            raise UserError(f"--min-length {lengths[0]} --max-length {lengths[1]}: need 4 <= MIN <= MAX")
        if min(config.width, config.height) < 16 or config.images < 1 or config.test_images < 0:
            raise UserError("--width and --height must be at least 16, --images at least 1")
        rng = np.random.default_rng(config.seed)
        out = Path(out)
        counts = {split: write_split(out / split, f"synth_{split}", n, rng, config.width, config.height,
                                     config.planes, lengths)
                  for split, n in (("train", config.images), ("test", config.test_images))}  # fmt: skip
        return (
            f"wrote {config.images} training and {config.test_images} test scenes of {config.width}x{config.height} "
            f"({counts['train']} + {counts['test']} aircraft) to {out}/train and {out}/test "
            f"(images/, masks/, xmls/); next: mlscale rareplanes tile {out} TILED_DIR"
        )


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def _train_mode_frozen_norm(model):
    """Mask R-CNN in train mode (it returns losses only then) with batch norm still using its
    running statistics, so that computing the test loss changes nothing."""
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    try:
        yield
    finally:
        model.eval()
