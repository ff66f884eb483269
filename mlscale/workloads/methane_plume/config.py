"""methane-plume's options: `mlscale run methane-plume` (`MethanePlumeConfig`) and
`mlscale data methane-plume` (`MethanePlumeData`), and the choices the command lines offer.
No framework import: building `mlscale --help` stays light."""

from __future__ import annotations

from dataclasses import dataclass

from mlscale.bench.config import opt

ARCHS = ("googlenet", "tilenet")
METHODS = ("cnn", "fcn", "exact")
LR_SCHEDULES = ("constant", "one-cycle")
# Per-model normalisation (mean, std) of the clamped CH4 enhancement, from the seed.
PRESETS = {"COVID_QC": (110.639, 183.9152), "CalCH4_v8": (140.6399, 237.5434), "Permian_QC": (100.2635, 158.7060)}
CLAMP = (0.0, 4000.0)  # ppm·m


@dataclass
class MethanePlumeConfig:
    tiles: str = opt("", "training tiles (tiles.h5 from `mlscale data methane-plume`), for --mode train", metavar="H5")
    flightline: str = opt("", "ENVI flightline (data file; its .hdr beside it), for inference", metavar="IMG")
    arch: str = opt(
        "googlenet",
        "tile classifier: googlenet (the seed's) or tilenet (padding-free, for --method exact)",
        choices=ARCHS,
    )
    preset: str = opt("COVID_QC", "CH4 normalisation (mean, std) of the seed's models", choices=tuple(PRESETS))
    tile_size: int = opt(256, "tile height and width in pixels", at_least=1)
    method: str = opt(
        "fcn",
        "inference method: cnn (a tile per pixel), fcn (dense FCN, shift-and-stitch), "
        "exact (dense, padding-free tilenet only)",
        choices=METHODS,
    )
    rows: int = opt(0, "inference on the first ROWS lines only (0: all); the cnn method is slow", at_least=0)
    augment: bool = opt(True, "random flips and rotations of training tiles (with --dense-consistency: one per batch)")
    lr_schedule: str = opt(
        "constant",
        "learning rate: constant, or one-cycle (up to --lr over 30 percent of the steps, then down)",
        choices=LR_SCHEDULES,
    )
    weight_decay: float = opt(0.0, "SGD weight decay", at_least=0)
    dense_consistency: float = opt(
        0.0,
        "train GoogLeNet for its dense form (--method fcn): weight LAMBDA of the tile/in-context logit MSE "
        "(4 is the tested value; 0: the seed's training); needs tiles written with --context",
        metavar="LAMBDA",
        at_least=0,
    )
    context: int = opt(
        0, "px of the tiles' context ring used in context (0: all the tiles file has)", metavar="PX", at_least=0
    )
    dense_warmup: int = opt(
        1, "epochs of the tile loss alone before the in-context loss starts", metavar="EPOCHS", at_least=0
    )
    dense_share: float = opt(0.25, "fraction of each batch that also goes through the network in context", at_most=1)
    dense_clip: float = opt(5.0, "gradient norm clip while training for the dense form (0: none)", at_least=0)
    workers: int = opt(0, "DataLoader worker processes per rank", at_least=0)


@dataclass
class MethanePlumeData:
    lines: int = opt(2801, "flightline lines (rows); the seed's sample has 2801", at_least=1)
    samples: int = opt(669, "flightline samples (columns); the seed's sample has 669", at_least=1)
    flightlines: int = opt(1, "number of flightlines", at_least=1)
    plumes: int = opt(8, "plumes per flightline", at_least=0)
    train_tiles: int = opt(1000, "training tiles", at_least=1)
    test_tiles: int = opt(200, "test tiles", at_least=1)
    tile_size: int = opt(256, "tile height and width", at_least=1)
    positive_fraction: float = opt(
        0.08, "fraction of tiles with a plume (the seed's data: 4 to 9 percent)", at_least=0, at_most=1
    )
    context: int = opt(
        0,
        "px of real scene kept around each tile (a multiple of 32; 64 for --dense-consistency training; a positive "
        "then has its plume source anywhere in the tile, not only in its central half)",
        metavar="PX",
        at_least=0,
    )
    seed: int = opt(0, "random seed")
