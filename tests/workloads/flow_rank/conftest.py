"""A small synthetic station, written once by the real `mlscale data flow-rank`, for every flow-rank test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.run import run_mlscale

# Small enough to train the tiny backbone in seconds, large enough that the ranking is learnt.
STATION = ["--images", 400, "--width", 64, "--height", 48, "--seed", 3]


@pytest.fixture(scope="session")
def station(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("flow_station")
    run_mlscale("data", "flow-rank", "--out", out, *STATION)
    return out


@pytest.fixture
def station_copy(station, tmp_path) -> Path:
    """A copy to damage."""
    return Path(shutil.copytree(station, tmp_path / "station"))
