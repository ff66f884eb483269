"""rareplanes' options: `mlscale run rareplanes` (`RarePlanesConfig`) and `mlscale data rareplanes`
(`RarePlanesData`), the file layout and the choices. No framework import."""

from __future__ import annotations

from dataclasses import dataclass

from mlscale.bench.config import opt

MODELS = ("fcn", "deeplabv3", "unet", "maskrcnn")
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")
# The seed's backbones: fcn_resnet101, deeplabv3_resnet101, maskrcnn_resnet50_fpn_v2.
SEED_BACKBONE = {"fcn": "resnet101", "deeplabv3": "resnet101", "maskrcnn": "resnet50"}
SPLITS = ("train", "test")
# The raw layout (RarePlanes synthetic) and the tiled one (the seed's preprocessing).
IMAGES, MASKS, XMLS = "images", "masks", "xmls"
IMAGES_TILED, MASKS_TILED = "images_tiled", "masks_tiled"
PREDICTIONS = "predicted_masks"


@dataclass
class RarePlanesConfig:
    data: str = opt("", "tiled data: a directory with train/ and test/, each holding images_tiled/ and "
                    "masks_tiled/ (`mlscale rareplanes tile RAW OUT`)", metavar="DIR")  # fmt: skip
    inference_data: str = opt(
        "", "PNG tiles for --mode inference / --infer (default: the test split's images_tiled/)", metavar="DIR"
    )
    model: str = opt("fcn", "fcn, deeplabv3, unet or maskrcnn", choices=MODELS)
    backbone: str = opt(
        "", "ResNet backbone of fcn, deeplabv3 and maskrcnn (default: the seed's, resnet101 for fcn and "
        "deeplabv3, resnet50 for maskrcnn); resnet18 for CPU runs", choices=("", *BACKBONES),
    )  # fmt: skip
    unet_width: int = opt(
        64, "UNet channels at the first level (the seed's 64: encoder 64 to 512, bottleneck 1024)", at_least=1
    )
    head_width: int = opt(
        256, "Mask R-CNN: channels of the FPN and the box and mask heads (the seed's 256)", at_least=1
    )
    augment: bool = opt(True, "the seed's augmentation of training tiles (rotation, flips; Mask R-CNN: h-flip)")
    score_threshold: float = opt(
        0.5, "Mask R-CNN: detections kept in predicted masks (score at least this)", at_least=0, at_most=1
    )
    workers: int = opt(0, "DataLoader worker processes per rank", at_least=0)


@dataclass
class RarePlanesData:
    images: int = opt(8, "training scenes", at_least=1)
    test_images: int = opt(2, "test scenes", at_least=0)
    width: int = opt(1920, "scene width in pixels (RarePlanes: 1920)", at_least=1)
    height: int = opt(1080, "scene height in pixels (RarePlanes: 1080)", at_least=1)
    planes: int = opt(12, "mean number of aircraft per scene", at_least=0)
    min_length: int = opt(40, "shortest aircraft, in pixels", at_least=1)
    max_length: int = opt(160, "longest aircraft, in pixels", at_least=1)
    seed: int = opt(0, "random seed")
