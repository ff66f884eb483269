"""rareplanes (seed 002): aircraft segmentation in RarePlanes synthetic aerial imagery with FCN,
DeepLabV3, UNet and Mask R-CNN; the raw scenes are tiled by `mlscale rareplanes tile`."""
