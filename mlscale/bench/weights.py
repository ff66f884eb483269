"""Model weights in and out of a run: `--weights PATH` before the first step,
`--save-weights PATH` after training.

The file is a plain `state_dict` written with `torch.save` (rank 0's model,
unwrapped). Reading also accepts the usual wrappers around one: a dict with a
"state_dict" or "model" entry, and keys prefixed "module." (a DDP model saved
as is). Every failure is one line naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mlscale.errors import UserError


def _unwrap(obj) -> dict[str, torch.Tensor] | None:
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        return None
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return obj


def load_weights(model: torch.nn.Module, path: str) -> None:
    """Load `path` into `model` (strict: every tensor present, every shape equal)."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: --weights file not found")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle/zip errors: anything that is not a torch.save file
        raise UserError(f"{path}: not a torch weights file ({type(err).__name__})") from None
    state = _unwrap(obj)
    if state is None:
        raise UserError(f"{path}: holds no state_dict (a dict of tensors)")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = [
        f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)})"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", shapes))
        if keys
    ]
    if problems:
        raise UserError(f"{path}: does not fit this model: {'; '.join(problems)}")
    model.load_state_dict(state)


def check_writable(path: str) -> None:
    """Fail before training, not after it, when the weights could not be saved."""
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UserError(f"{path}: --save-weights directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{path}: --save-weights directory {parent} is not writable")


def save_weights(model: torch.nn.Module, path: str) -> None:
    """Write atomically: a reader never sees half a file."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
