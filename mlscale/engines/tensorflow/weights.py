"""TensorFlow model weights in and out of a run (`--weights`, `--save-weights`): one HDF5 file with a
dataset per variable, in the model's order (Keras numbers its layer names per process, so names
are kept only as attributes), and the workload's metadata as a JSON attribute, written
atomically. Every failure is one line naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mlscale.errors import UserError
from mlscale.fileio import atomic_path

FORMAT = "mlscale-tf-weights-1"


def save_weights(model, path: str, meta: dict) -> None:
    import h5py

    with atomic_path(path, ".h5") as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["format"] = FORMAT
        h5.attrs["meta"] = json.dumps(meta)
        for i, var in enumerate(model.weights):
            h5.create_dataset(f"w{i:04d}", data=np.asarray(var.numpy())).attrs["path"] = var.path


def read_weights(path: str) -> tuple[list[np.ndarray], dict]:
    import h5py

    if not Path(path).is_file():
        raise UserError(f"{path}: --weights file not found")
    try:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("format") != FORMAT:
                raise UserError(f"{path}: not a TensorFlow weights file of mlscale")
            return [h5[name][()] for name in sorted(h5)], json.loads(h5.attrs["meta"])
    except OSError:
        raise UserError(f"{path}: not an HDF5 weights file (torch weights need --framework torch)") from None


def load_weights(model, arrays: list[np.ndarray], path: str) -> None:
    own = model.weights
    shapes = [tuple(v.shape) for v in own]
    if shapes != [a.shape for a in arrays]:
        raise UserError(f"{path}: does not fit this model ({len(arrays)} arrays for {len(own)} variables, "
                        "or other shapes)")  # fmt: skip
    for var, array in zip(own, arrays):
        var.assign(array)
