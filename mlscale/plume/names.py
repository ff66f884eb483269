"""Choices the command line offers, kept free of torch so that building `mlscale --help` stays light."""

from __future__ import annotations

ARCHS = ("googlenet", "tilenet")
METHODS = ("cnn", "fcn", "exact")
# Per-model normalisation (mean, std) of the clamped CH4 enhancement, from the seed.
PRESETS = {"COVID_QC": (110.639, 183.9152), "CalCH4_v8": (140.6399, 237.5434), "Permian_QC": (100.2635, 158.7060)}
CLAMP = (0.0, 4000.0)  # ppm·m
