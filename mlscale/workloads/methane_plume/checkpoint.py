"""Plume classifiers by name, their trunks for dense evaluation, and checkpoint files.

A checkpoint is a `torch.save`d dict: ``format`` ("mlscale-plume-1"), ``arch`` ("googlenet" or
"tilenet"), ``state_dict``, ``preset`` (normalisation), ``tile_size``, ``threshold`` (best-F1
decision threshold, or None) and ``metrics``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from mlscale.errors import UserError
from mlscale.workloads.methane_plume.config import ARCHS

FORMAT = "mlscale-plume-1"
MODELS_ENV = "MLSCALE_PLUME_MODELS"  # where `-m COVID_QC` looks for COVID_QC.pt (besides ./models)


def build_tile_classifier(arch: str) -> nn.Module:
    if arch == "googlenet":
        from mlscale.workloads.methane_plume.googlenet import googlenet_plume

        return googlenet_plume()
    if arch == "tilenet":
        from mlscale.workloads.methane_plume.tilenet import ValidTileNet

        return ValidTileNet()
    raise UserError(f"unknown plume model architecture {arch!r}; choose one of: {', '.join(ARCHS)}")


def trunk_of(model: nn.Module) -> tuple[list[nn.Module], nn.Linear]:
    """The layers a tile passes through before global pooling, in order, and the final fc."""
    from torchvision.models import GoogLeNet

    if isinstance(model, GoogLeNet):
        names = [
            "conv1",
            "maxpool1",
            "conv2",
            "conv3",
            "maxpool2",
            "inception3a",
            "inception3b",
            "maxpool3",
            "inception4a",
            "inception4b",
            "inception4c",
            "inception4d",
            "inception4e",
            "maxpool4",
            "inception5a",
            "inception5b",
        ]
        return [getattr(model, n) for n in names], model.fc
    if hasattr(model, "features") and isinstance(model.features, nn.Sequential):
        return list(model.features), model.fc
    raise TypeError(f"no dense form known for {type(model).__name__}")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    arch: str,
    preset: str,
    tile_size: int,
    threshold: float | None = None,
    metrics: dict | None = None,
) -> Path:
    """A checkpoint as `mlscale run methane-plume --save-weights` writes it (`MethanePlume.checkpoint_meta`)."""
    from mlscale.engines.torch.weights import save_weights

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "arch": arch, "preset": preset, "tile_size": tile_size, "threshold": threshold,
            "metrics": metrics or {}}  # fmt: skip
    save_weights(getattr(model, "module", model), str(path), meta)  # unwrap DDP
    return path


def resolve_model_path(name: str) -> Path:
    """`-m` takes a checkpoint path or, as in the seed, a model name looked up as NAME.pt in
    $MLSCALE_PLUME_MODELS or ./models."""
    path = Path(name)
    if path.suffix or os.sep in name:
        if not path.is_file():
            raise UserError(f"{path}: no such model checkpoint")
        return path
    dirs = [Path(d) for d in os.environ.get(MODELS_ENV, "").split(os.pathsep) if d] + [Path("models")]
    for d in dirs:
        if (d / f"{name}.pt").is_file():
            return d / f"{name}.pt"
    raise UserError(
        f"{name}: no model checkpoint {name}.pt in {', '.join(map(str, dirs))} (set ${MODELS_ENV} or give a path)"
    )


def load_checkpoint(path: str | os.PathLike, arch: str | None = None) -> tuple[nn.Module, dict]:
    """Model (eval mode, on CPU) and the checkpoint's metadata. A bare state_dict is accepted too when
    `arch` says what it belongs to."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        raise UserError(f"{path}: not a torch checkpoint ({type(err).__name__})") from None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        meta = {k: v for k, v in payload.items() if k != "state_dict"}
        state = payload["state_dict"]
    elif isinstance(payload, dict) and arch and all(isinstance(v, torch.Tensor) for v in payload.values()):
        meta, state = {"arch": arch}, payload
    else:
        raise UserError(
            f"{path}: not an mlscale plume checkpoint (no format {FORMAT!r}); a bare state_dict needs --arch"
        )
    model = build_tile_classifier(arch or meta["arch"])
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(
            f"{path}: weights do not fit the {arch or meta['arch']} model ({str(err).splitlines()[0]})"
        ) from None
    return model.eval(), meta


def check_tile_size(model: nn.Module, arch: str, tile_size: int) -> None:
    """A one-line error, not a traceback mid-run, when tiles are too small for the network."""
    if tile_size < 8:
        raise UserError(f"--tile-size {tile_size}: must be at least 8")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, tile_size, tile_size))
    except RuntimeError:
        raise UserError(
            f"--tile-size {tile_size} is too small for the {arch} network (tilenet needs >= 128, googlenet >= 32)"
        ) from None
    finally:
        model.train(was_training)
