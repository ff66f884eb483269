"""cosmic-tagger's options: `mlscale run cosmic-tagger` (`CosmicTaggerConfig`) and
`mlscale data cosmic-tagger` (`CosmicTaggerDataConfig`). No framework import."""

from __future__ import annotations

from dataclasses import dataclass

from mlscale.bench.config import opt

STRATEGIES = ("scatter", "indices", "shard")
WEIGHTINGS = ("focal", "light", "even", "none")
CHOICES = {
    "connections": ("sum", "concat", "none"),
    "growth_rate": ("multiplicative", "additive"),
    "downsampling": ("convolutional", "max_pooling"),
    "upsampling": ("convolutional", "interpolation"),
    "plane_norm": ("per-plane", "pooled"),
}

TRAIN_FILE, TEST_FILE = "cosmic_tagging_train.h5", "cosmic_tagging_test.h5"
PREDICTION_FILE = "predictions.h5"
RESOLUTIONS = ("full", "downsampled")


@dataclass
class CosmicTaggerConfig:
    data: str = opt("", "larcv3 file, or a directory with cosmic_tagging_train.h5 and cosmic_tagging_test.h5 "
                    "(write one with `mlscale data cosmic-tagger`)", metavar="PATH")  # fmt: skip
    test_data: str = opt("", "larcv3 file for the test and inference passes (default: from --data)", metavar="FILE")
    image_producer: str = opt("sbndwire", "sparse2d producer holding the charge")
    label_producer: str = opt("sbnd_cosmicseg", "sparse2d producer holding the labels (0 bkg, 1 cosmic, 2 neutrino)")
    resolution: str = opt(
        "full", "full: planes as stored; downsampled: 2x2 pooled (1280x2048 -> 640x1024)", choices=RESOLUTIONS
    )
    io_strategy: str = opt(
        "scatter",
        "scatter: root reads and scatters fixed-size sparse buffers; indices: root scatters entry "
        "indices, each rank reads its own; shard: each rank reads a static shard",
        choices=STRATEGIES,
    )
    shuffle: bool = opt(True, "shuffle the training entries every epoch")
    prefetch: int = opt(2, "batches read ahead by the background thread", at_least=0)
    loss_weighting: str = opt("focal", "pixel weighting of the cross entropy", choices=WEIGHTINGS)
    n_initial_filters: int = opt(12, "N_INITIAL_FILTERS", at_least=1)
    network_depth: int = opt(5, "NETWORK_DEPTH (levels of the U; H and W must divide by 2**depth)", at_least=1)
    res_blocks_per_layer: int = opt(2, "RES_BLOCKS_PER_LAYER", at_least=0)
    res_blocks_deepest_layer: int = opt(4, "RES_BLOCKS_DEEPEST_LAYER", at_least=0)
    res_blocks_final: int = opt(2, "RES_BLOCKS_FINAL", at_least=0)
    residual: bool = opt(True, "RESIDUAL blocks (else plain conv blocks)")
    share_weights: bool = opt(True, "SHARE_WEIGHTS across the three planes")
    connections: str = opt("sum", "CONNECTIONS across the U", choices=CHOICES["connections"])
    growth_rate: str = opt("multiplicative", "GROWTH_RATE of filters per level", choices=CHOICES["growth_rate"])
    batch_norm: bool = opt(True, "BATCH_NORM")
    use_bias: bool = opt(True, "USE_BIAS")
    bottleneck_size: int = opt(-1, "BOTTLENECK_SIZE at the deepest level (-1: none)", at_least=-1)
    downsampling: str = opt("convolutional", "downsampling", choices=CHOICES["downsampling"])
    upsampling: str = opt("convolutional", "upsampling", choices=CHOICES["upsampling"])
    plane_norm: str = opt(
        "per-plane",
        "per-plane: shared modules run on each plane in turn, batch-norm statistics per plane (the original's); "
        "pooled: planes stacked in one batch, statistics pooled over planes",
        choices=CHOICES["plane_norm"],
    )


@dataclass
class CosmicTaggerDataConfig:
    events: int = opt(64, "training events", at_least=1)
    test_events: int = opt(16, "test events (a second file)", at_least=1)
    resolution: str = opt("full", "full: 1280x2048 planes; downsampled: 640x1024", choices=RESOLUTIONS)
    height: int = opt(
        0, "plane height in pixels, overriding --resolution (with --width; for small test sets)", at_least=0
    )
    width: int = opt(0, "plane width in pixels, overriding --resolution (with --height)", at_least=0)
    cosmics: float = opt(4.0, "mean number of cosmic tracks per event", at_least=0)
    neutrino_fraction: float = opt(0.8, "share of events with a neutrino interaction", at_least=0, at_most=1)
    noise: float = opt(0.003, "noise hits per pixel", at_least=0, at_most=1)
    seed: int = opt(0, "random seed")
