"""cloud-mask's options: `mlscale run cloud-mask` (`CloudMaskConfig`) and `mlscale data cloud-mask`
(`CloudMaskData`). No framework import: `mlscale --help` and `mlscale report` stay light."""

from __future__ import annotations

from dataclasses import dataclass

from mlscale.bench.config import opt

FRAMEWORKS = ("torch", "tf")
ENGINES = {"torch": "torch", "tf": "tensorflow"}  # --framework -> mlscale engine name


@dataclass
class CloudMaskConfig:
    data: str = opt("", "converted HDF5 products (`mlscale cloud-mask convert`), searched recursively", metavar="DIR")
    products: str = opt("", "raw .SEN3 products for --mode inference (the seed infers from them)", metavar="DIR")
    framework: str = opt("torch", "torch (PyTorch) or tf (TensorFlow)", choices=FRAMEWORKS)
    patch_size: int = opt(256, "training and inference patch side in pixels (a multiple of 8)", at_least=8)
    loss_border: int = opt(15, "pixels cropped from each side of a patch before the loss and accuracy", at_least=0)
    infer_border: int = opt(
        40, "pixels dropped from each side of an inference patch (stride = patch - 2 x this)", at_least=0
    )
    width: int = opt(32, "filters of the first U-Net stage (32 in the seed: about 1.95M parameters)", at_least=1)
    pos_weight: float = opt(0.5, "weight of cloudy pixels in the cross-entropy (the seed's pos_weight)", at_least=0)
    test_fraction: float = opt(0.2, "fraction of the files held out for the test split", at_least=0, at_most=1)
    split_seed: int = opt(42, "seed of the train/test file split (the seed's 42)")
    cache: bool = opt(True, "keep the patches in memory after the first epoch (the seed's tf.data cache)")


@dataclass
class CloudMaskData:
    products: int = opt(8, "number of .SEN3 products", at_least=1)
    rows: int = opt(
        1200, "rows of the 1 km 'in' grid (the 500 m 'an' grid has twice as many); the seed's 1200", at_least=1
    )
    columns: int = opt(1500, "columns of the 'in' grid; the seed's 1500", at_least=1)
    night_fraction: float = opt(
        0.25, "fraction of the products taken at night (no day bit, no sunlight)", at_least=0, at_most=1
    )
    buoys: int = opt(40, "SST match-ups (buoys) per product, over sea, under clear and cloudy sky", at_least=0)
    seed: int = opt(0, "random seed")
