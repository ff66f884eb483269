"""Labelled sparse 2-D events in fixed-size buffers, for a root rank that reads and scatters them.

The root reads a global batch of larcv3 sparse2d events (a charge producer and a label
producer over the same voxels) and packs each event into one row of `max_voxels` 8-byte
slots: key = label << 30 | (plane * H * W + larcv id), and the charge. Every rank knows the
buffer shape, so only the data travels (`Communicator.scatter_array`); each rank unpacks its
rows back into voxel lists.
"""

from __future__ import annotations

import numpy as np

from mlscale.io.larcv import SparseEvents

PACKED_DTYPE = np.dtype([("key", "<u4"), ("value", "<f4")])
LABEL_SHIFT = 30
PAD = np.uint32(0xFFFFFFFF)  # key of an unused slot (label bits 3: never a real label)


def fits(n_planes: int, plane_shape: tuple[int, int]) -> bool:
    """Whether every (plane, id) index fits below the label bits."""
    return n_planes * plane_shape[0] * plane_shape[1] < (1 << LABEL_SHIFT) - 1


def pack(charge: SparseEvents, labels: SparseEvents, n_planes: int, max_voxels: int) -> np.ndarray:
    """[events, max_voxels] buffers; the label voxels must be the charge voxels (same ids)."""
    sizes = charge.event_sizes()
    buf = np.zeros((len(sizes), max_voxels), dtype=PACKED_DTYPE)
    buf["key"] = PAD
    event = np.repeat(np.arange(len(sizes)), sizes)
    slot = np.arange(len(event)) - np.repeat(np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    plane = charge.plane_of_voxel() % n_planes
    index = plane * (charge.shape[0] * charge.shape[1]) + charge.ids
    buf["key"][event, slot] = (labels.values.astype(np.int64) << LABEL_SHIFT) | index
    buf["value"][event, slot] = charge.values
    return buf


def unpack(buf: np.ndarray, n_planes: int, plane_shape: tuple[int, int]):
    """(row = event * planes + plane, larcv id, charge, label) of every used slot."""
    plane_size = plane_shape[0] * plane_shape[1]
    event, slot = np.nonzero(buf["key"] != PAD)
    key = buf["key"][event, slot].astype(np.int64)
    index, label = key & ((1 << LABEL_SHIFT) - 1), key >> LABEL_SHIFT
    rows = event * n_planes + index // plane_size
    return rows, index % plane_size, buf["value"][event, slot], label
