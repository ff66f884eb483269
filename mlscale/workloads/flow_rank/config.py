"""flow-rank's options: `mlscale run flow-rank` (`FlowRankConfig`) and `mlscale data flow-rank`
(`FlowRankData`), and the Flow Photo Explorer's CSV layout. No framework import."""

from __future__ import annotations

from dataclasses import dataclass

from mlscale.bench.config import opt

# The original's model-input files (r/rank-input.R): images.csv and pairs.csv, columns in this order.
IMAGES_FILE, PAIRS_FILE, IMAGES_DIR = "images.csv", "pairs.csv", "images"
IMAGE_COLUMNS = ("split", "image_id", "timestamp", "filename", "url", "value")
PAIR_COLUMNS = ("split", "pair", "image_id_1", "timestamp_1", "filename_1", "value_1",
                "image_id_2", "timestamp_2", "filename_2", "value_2", "label")  # fmt: skip
IMAGE_SPLITS = ("train", "val", "test-in", "test-out")
PAIR_SPLITS = ("train", "val")
SCORED_SPLITS = ("val", "test-in", "test-out")  # Kendall's tau each epoch, over every image of each
PREDICTIONS_FILE = "predictions.csv"
BACKBONES = ("resnet18", "tiny")
CHECKPOINT_FORMAT = "flow-rank/1"


@dataclass
class FlowRankConfig:
    data: str = opt("", "directory with images.csv and pairs.csv (write one with `mlscale data flow-rank`)",
                    metavar="DIR")  # fmt: skip
    images: str = opt("", "folder the CSV filenames are relative to (default: DIR/images)", metavar="DIR")
    backbone: str = opt("resnet18", "resnet18 (the seed's, ~11.3M parameters) or tiny (a 4-layer CNN, for tests)",
                        choices=BACKBONES)  # fmt: skip
    input_size: int = opt(
        480, "resize height in pixels (width = height x the first image's aspect); crops are 0.8x", at_least=1
    )
    augment: bool = opt(True, "training augmentation: random crop, horizontal flip, rotation within 10 degrees")
    unfreeze_after: int = opt(
        2, "the backbone is frozen (not updated) for this many epochs (0: never frozen)", at_least=0
    )
    plateau_patience: int = opt(1, "ReduceLROnPlateau on the validation loss: epochs without improvement", at_least=0)
    plateau_factor: float = opt(0.5, "ReduceLROnPlateau: factor applied to the learning rate", at_least=0, at_most=1)
    stats_images: int = opt(
        1000, "normalisation statistics from up to this many training pairs' first images", at_least=1
    )
    workers: int = opt(0, "DataLoader worker processes per rank (JPEG decoding and augmentation)", at_least=0)


@dataclass
class FlowRankData:
    images: int = opt(1000, "photos of the station (every one in images.csv)", at_least=1)
    width: int = opt(320, "photo width in pixels", at_least=1)
    height: int = opt(240, "photo height in pixels", at_least=1)
    per_day: int = opt(4, "photos per day, between 7:00 and 18:00", at_least=1)
    annotation_fraction: float = opt(
        0.7, "the annotation period: this share of the days, from the first", at_least=0, at_most=1
    )
    annotated_fraction: float = opt(
        0.5, "share of the annotation period's photos shown to annotators", at_least=0, at_most=1
    )
    session_size: int = opt(8, "photos per annotation session (pairs are drawn within a session)", at_least=1)
    pairs_per_image: float = opt(2.0, "annotated pairs per annotated photo (before the swapped copies)", at_least=0)
    same_tolerance: float = opt(0.05, "relative flow difference below which annotators answer 'same'", at_least=0)
    label_noise: float = opt(
        0.1, "chance of a wrong answer for near-equal flows (falls off with the difference)", at_least=0, at_most=1
    )
    train_fraction: float = opt(
        0.8, "share of annotated photos whose components of the pair graph go to train", at_least=0, at_most=1
    )
    quality: int = opt(85, "JPEG quality", at_least=1, at_most=100)
    seed: int = opt(0, "random seed")
