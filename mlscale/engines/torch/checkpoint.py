"""Training checkpoints of the torch engine: what a preempted run needs to continue bit for bit.

    checkpoint/model.pt   rank 0's model (unwrapped), optimizer and AMP GradScaler state_dicts, and the
                          workload's own training state (`Workload.train_state`)
    checkpoint/ranks.pt   per rank: RNG states, the train loader's state at the start of the
                          epoch's pass, the test loader's state, the epoch's partial sums

Both hold only tensors and plain Python values, so they load with `weights_only=True`.
Each file is written atomically (`mlscale.fileio.atomic_path`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlscale.errors import UserError
from mlscale.fileio import atomic_path

MODEL, RANKS = "model.pt", "ranks.pt"


def rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "python": [version, list(internal), gauss_next],
        "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _parts(obj: Any, path: str = "", depth: int = 3, seen: set | None = None) -> Iterator[tuple[str, Any]]:
    """`obj` and the public attributes below it that may hold a loader's position between passes:
    a DataLoader's generator, its sampler (a DistributedSampler's epoch), a wrapper's own epoch."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (torch.Tensor, np.ndarray, torch.nn.Module)):
        return
    seen.add(id(obj))
    yield path, obj
    if depth == 0 or not hasattr(obj, "__dict__") or isinstance(obj, torch.Generator):
        return
    for name, value in vars(obj).items():
        if not name.startswith("_") and (hasattr(value, "__dict__") or isinstance(value, torch.Generator)):
            yield from _parts(value, f"{path}.{name}", depth - 1, seen)


def data_state(data: Any) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for path, obj in _parts(data):
        if isinstance(obj, torch.Generator):
            state[path] = obj.get_state()
        elif isinstance(getattr(obj, "epoch", None), int) and not isinstance(obj.epoch, bool):
            state[path + ":epoch"] = obj.epoch
    return state


def set_data_state(data: Any, state: dict[str, Any]) -> None:
    parts = dict(_parts(data))
    for key, value in state.items():
        path, _, attr = key.partition(":")
        if path not in parts:
            raise UserError(f"the checkpoint's loader state does not fit this run's loader (no {path or 'loader'})")
        if attr:
            setattr(parts[path], attr, value)
        else:
            parts[path].set_state(value)


def save(directory: Path, model: torch.nn.Module, optimizer, scaler, workload_state, rank_states: list) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model_state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "workload": workload_state,
    }
    for name, obj in ((MODEL, model_state), (RANKS, rank_states)):
        with atomic_path(directory / name) as tmp:
            torch.save(obj, tmp)


def _read(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: --resume: checkpoint file missing") from None
    except Exception as err:  # a truncated or foreign file
        raise UserError(f"{path}: --resume: not a readable checkpoint ({type(err).__name__})") from None


def load(directory: Path, model: torch.nn.Module, optimizer, scaler, workload) -> list:
    state = _read(directory / MODEL)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    if state.get("workload") is not None:
        workload.load_train_state(state["workload"])
    return _read(directory / RANKS)
