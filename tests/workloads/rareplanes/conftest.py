"""Small RarePlanes-like data sets, written by the real commands once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.run import run_mlscale

TILE = 64  # tiles of 64 pixels keep the CPU trainings to seconds


@pytest.fixture(scope="session")
def raw_scenes(tmp_path_factory) -> Path:
    """Raw scenes in RarePlanes' layout: train/ and test/, each with images/, masks/, xmls/."""
    out = tmp_path_factory.mktemp("rareplanes") / "raw"
    run_mlscale("data", "rareplanes", "--out", out, "--images", 8, "--test-images", 2, "--width", 256,
                "--height", 144, "--planes", 5, "--min-length", 28, "--max-length", 60)  # fmt: skip
    return out


@pytest.fixture(scope="session")
def tiled(raw_scenes) -> Path:
    out = raw_scenes.parent / "tiled"
    run_mlscale("rareplanes", "tile", raw_scenes, out, "--tile-size", TILE)
    return out
