"""The four models, from torchvision builders without weights (nothing downloads):

- FCN and DeepLabV3 with 2 classes and no auxiliary head: the seed's fcn_resnet101 and
  deeplabv3_resnet101 from torchvision's builders for resnet50/101; resnet18/34 bodies get the same
  dilation (layers 3 and 4 dilated, output stride 8) and the same heads;
- UNet: encoder `width` to 8 x width with batch norm, bottleneck 16 x width, transposed-conv
  decoder, one output channel (width 64: the seed's, about 31M parameters);
- Mask R-CNN v2 (maskrcnn_resnet50_fpn_v2's FPN and heads: 2-conv RPN head, 4-conv + FC box head,
  4-conv mask head, batch norm), 2 classes, images kept at the tile size; anchor sizes, proposals
  and sampled RoIs scale with the tile (torchvision's defaults at 512), the FPN and head channels
  with `head_width` (256: the seed's).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models
from torchvision.models import segmentation
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead


def _dilate(layer: nn.Sequential, previous: int, dilation: int) -> None:
    """A BasicBlock layer made stride 1 with dilated 3x3 convolutions (what torchvision's
    replace_stride_with_dilation does for Bottleneck layers)."""
    for i, block in enumerate(layer):
        for conv, d in ((block.conv1, previous if i == 0 else dilation), (block.conv2, dilation)):
            conv.stride, conv.dilation, conv.padding = (1, 1), (d, d), (d, d)
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)


def _small_body(backbone: str) -> nn.Module:
    net = getattr(models, backbone)(weights=None)
    _dilate(net.layer3, 1, 2)
    _dilate(net.layer4, 2, 4)
    return IntermediateLayerGetter(net, {"layer4": "out"})


def build_semantic(model: str, backbone: str) -> nn.Module:
    if backbone in ("resnet50", "resnet101"):
        builder = getattr(segmentation, f"{model}_{backbone}")
        return builder(weights=None, weights_backbone=None, num_classes=2, aux_loss=False)
    head = segmentation.fcn.FCNHead(512, 2) if model == "fcn" else segmentation.deeplabv3.DeepLabHead(512, 2)
    cls = segmentation.FCN if model == "fcn" else segmentation.DeepLabV3
    return cls(_small_body(backbone), head, None)


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )  # fmt: skip


class UNet(nn.Module):
    """UNet (Ronneberger et al.) with batch norm; sides must divide by 16."""

    def __init__(self, width: int = 64, in_channels: int = 3):
        super().__init__()
        w = [width * 2**i for i in range(5)]
        self.down = nn.ModuleList([_double_conv(in_channels, w[0])] + [_double_conv(w[i], w[i + 1]) for i in range(4)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in reversed(range(4))])
        self.merge = nn.ModuleList([_double_conv(2 * w[i], w[i]) for i in reversed(range(4))])
        self.out = nn.Conv2d(w[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([skip, up(x)], 1))
        return self.out(x)


def build_maskrcnn(backbone: str, tile: int, width: int = 256) -> nn.Module:
    """Mask R-CNN v2; `width` is the FPN's and the heads' channels (256: the seed's)."""
    body = getattr(models, backbone)(weights=None)
    channels = [body.layer1[-1].conv1.in_channels * 2**i for i in range(4)]  # 64..512 or 256..2048
    body = BackboneWithFPN(body, {f"layer{i}": str(i - 1) for i in range(1, 5)}, channels, width,
                           norm_layer=nn.BatchNorm2d)  # fmt: skip
    sizes = tuple((max(4, round(s * tile / 512)),) for s in (32, 64, 128, 256, 512))
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    area = (tile / 512) ** 2  # fewer proposals and sampled RoIs in smaller images
    return MaskRCNN(
        body,
        num_classes=None,  # the predictors below have 2 classes
        min_size=tile,
        max_size=tile,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(width, anchors.num_anchors_per_location()[0], conv_depth=2),
        box_head=FastRCNNConvFCHead((width, 7, 7), [width] * 4, [4 * width], norm_layer=nn.BatchNorm2d),
        box_predictor=FastRCNNPredictor(4 * width, 2),
        mask_head=MaskRCNNHeads(width, [width] * 4, 1, norm_layer=nn.BatchNorm2d),
        mask_predictor=MaskRCNNPredictor(width, width, 2),
        rpn_pre_nms_top_n_train=max(200, round(2000 * area)),
        rpn_post_nms_top_n_train=max(200, round(2000 * area)),
        rpn_pre_nms_top_n_test=max(100, round(1000 * area)),
        rpn_post_nms_top_n_test=max(100, round(1000 * area)),
        box_batch_size_per_image=max(64, round(512 * area)),
    )


def build(model: str, backbone: str, unet_width: int, head_width: int, tile: int) -> nn.Module:
    if model == "unet":
        return UNet(unet_width)
    if model == "maskrcnn":
        return build_maskrcnn(backbone, tile, head_width)
    return build_semantic(model, backbone)
