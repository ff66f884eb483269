"""Model weights in and out of a run: `--weights PATH` before the first step,
`--save-weights PATH` after training.

The file is written with `torch.save` from rank 0's unwrapped model: a plain
`state_dict`, or, when the workload has facts to keep beside the weights
(`Workload.checkpoint_meta()`, e.g. a decision threshold), a dict of those facts
with the weights under "state_dict". Reading accepts both, and the usual wrappers
around a state_dict: a dict with a "state_dict" or "model" entry, and keys
prefixed "module." (a DDP model saved as is). Every failure is one line naming
the file.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mlscale.errors import UserError
from mlscale.fileio import atomic_path


def _unwrap(obj) -> tuple[dict[str, torch.Tensor] | None, dict]:
    """(state_dict or None, the metadata beside it)."""
    meta: dict = {}
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            meta = {k: v for k, v in obj.items() if k != key} or meta
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        return None, meta
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return obj, meta


def read_weights(path: str) -> tuple[dict[str, torch.Tensor], dict]:
    """The state_dict in `path` and the metadata saved beside it."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: --weights file not found")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle/zip errors: anything that is not a torch.save file
        raise UserError(f"{path}: not a torch weights file ({type(err).__name__})") from None
    state, meta = _unwrap(obj)
    if state is None:
        raise UserError(f"{path}: holds no state_dict (a dict of tensors)")
    return state, meta


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str) -> None:
    """Load `state` into `model` (strict: every tensor present, every shape equal)."""
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


def load_weights(model: torch.nn.Module, path: str) -> dict:
    """Load `path` into `model`; returns the metadata saved beside the weights."""
    state, meta = read_weights(path)
    load_state(model, state, path)
    return meta


def save_weights(model: torch.nn.Module, path: str, meta: dict | None = None) -> None:
    """Write atomically: a reader never sees half a file."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({**meta, "state_dict": state} if meta else state, tmp)
