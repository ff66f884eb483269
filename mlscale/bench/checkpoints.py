"""Checks on `--weights` / `--save-weights` paths that need no framework."""

from __future__ import annotations

import os
from pathlib import Path

from mlscale.errors import UserError


def check_writable(path: str) -> None:
    """Fail before training, not after it, when the weights could not be saved."""
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UserError(f"{path}: --save-weights directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{path}: --save-weights directory {parent} is not writable")
