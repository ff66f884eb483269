"""Fixtures shared by every test folder; helpers live in tests/support/ (on the path via pytest's
`pythonpath`): `from support.run import run_mlscale, TINY_SYNTHETIC`."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.run import REAL_DATA


@pytest.fixture
def real_cosmic_file() -> Path:
    """The real CosmicTagger sample (larcv3), from tests/data/real."""
    return REAL_DATA / "cosmic_tagging_light.h5"


@pytest.fixture
def shared_data() -> Path:
    """The folder of real sample files, tests/data/real."""
    return REAL_DATA
