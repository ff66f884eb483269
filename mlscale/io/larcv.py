"""larcv3 sparse2d HDF5, read and written with h5py and numpy.

The layout is the one larcv3's IOManager writes (checked against a real
CosmicTagger file, see tests/io/test_larcv.py):

    Events/event_id                         {run, subrun, event: i8}, one row per event
    Data/sparse2d_<producer>_group/
        extents        {first: u8, N: u4} (padded to 16 bytes)  one row per event -> its planes
        voxel_extents  {first: u8, N: u4, ID: u4}               one row per event x plane -> its voxels
        image_meta     {valid, projection_id, image_sizes, number_of_voxels, origin}  one row per event x plane
        voxels         {id: u8, value: f4} (padded to 16 bytes)  all voxels, concatenated

Every dataset is 1-d, chunked (larcv3's chunk sizes), gzip level 1 and
resizable (maxshape None). A voxel id unravels as x = id // ny, y = id % ny
with (nx, ny) = number_of_voxels; the dense image is img[plane, y, x], i.e.
1280 x 2048 for a full-resolution CosmicTagger plane.

Reading is vectorised: an event's voxels are one contiguous slice of
`voxels`, consecutive entries are read with one slice, and densifying is one
fancy-index assignment for the whole batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from mlscale.errors import UserError
from mlscale.fileio import atomic_path
from mlscale.io.h5chunks import ChunkedSlices

EXTENTS_DTYPE = np.dtype({"names": ["first", "N"], "formats": ["<u8", "<u4"], "offsets": [0, 8], "itemsize": 16})
ID_EXTENTS_DTYPE = np.dtype([("first", "<u8"), ("N", "<u4"), ("ID", "<u4")])
IMAGE_META_DTYPE = np.dtype(
    {
        "names": ["valid", "projection_id", "image_sizes", "number_of_voxels", "origin"],
        "formats": ["u1", "<u8", ("<f8", (2,)), ("<u8", (2,)), ("<f8", (2,))],
        "offsets": [0, 8, 16, 32, 48],
        "itemsize": 72,
    }
)
VOXEL_DTYPE = np.dtype({"names": ["id", "value"], "formats": ["<u8", "<f4"], "offsets": [0, 8], "itemsize": 16})
EVENT_ID_DTYPE = np.dtype([("run", "<i8"), ("subrun", "<i8"), ("event", "<i8")])

# larcv3's chunk sizes (EventSparseTensor.cxx, IOManager.cxx), also what the real files carry.
CHUNKS = {"extents": 10, "voxel_extents": 100, "image_meta": 100, "voxels": 1000, "event_id": 100}
COMPRESSION_LEVEL = 1

FULL_SHAPE = (1280, 2048)  # (H, W) = (ny, nx) of a full-resolution CosmicTagger plane
DOWNSAMPLED_SHAPE = (640, 1024)
DATASETS = ("extents", "voxel_extents", "image_meta", "voxels")


def group_name(producer: str) -> str:
    return f"sparse2d_{producer}_group"


@dataclass
class SparseEvents:
    """Sparse planes of several events: voxel ids and values, plane by plane.

    counts[e, p] voxels belong to event e, plane p; `ids` and `values` hold them
    concatenated in (event, plane) order. shape = (H, W) of one dense plane.
    """

    counts: np.ndarray  # [n_events, n_planes] int64
    ids: np.ndarray  # [n_voxels] int64
    values: np.ndarray  # [n_voxels] float32
    shape: tuple[int, int]

    @property
    def n_events(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_planes(self) -> int:
        return int(self.counts.shape[1])

    def event_sizes(self) -> np.ndarray:
        return self.counts.sum(axis=1)

    def plane_of_voxel(self) -> np.ndarray:
        """Flat (event * n_planes + plane) for every voxel."""
        return np.repeat(np.arange(self.counts.size), self.counts.reshape(-1))

    def select(self, events: Sequence[int] | np.ndarray) -> SparseEvents:
        """A subset of the events, in the given order."""
        events = np.asarray(events, dtype=np.int64)
        sizes = self.event_sizes()
        starts = np.concatenate([[0], np.cumsum(sizes)])
        voxel_index = _ranges(starts[events], sizes[events])
        return SparseEvents(self.counts[events], self.ids[voxel_index], self.values[voxel_index], self.shape)

    @classmethod
    def from_planes(cls, planes: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]], shape: tuple[int, int]):
        """Build from [event][plane] -> (ids, values)."""
        counts = np.array([[len(ids) for ids, _ in event] for event in planes], dtype=np.int64)
        ids = [np.asarray(i, dtype=np.int64) for event in planes for i, _ in event]
        values = [np.asarray(v, dtype=np.float32) for event in planes for _, v in event]
        return cls(
            counts,
            np.concatenate(ids) if ids else np.zeros(0, np.int64),
            np.concatenate(values) if values else np.zeros(0, np.float32),
            shape,
        )


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for each (s, n), without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.asarray(starts, dtype=np.int64) - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return offsets + np.arange(total, dtype=np.int64)


def _contiguous_runs(entries: np.ndarray) -> list[tuple[int, int]]:
    """Split sorted unique entries into (start, stop) runs of consecutive numbers."""
    if len(entries) == 0:
        return []
    breaks = np.flatnonzero(np.diff(entries) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(entries)]])
    return [(int(entries[a]), int(entries[b - 1]) + 1) for a, b in zip(starts, stops, strict=True)]


class LarcvFile:
    """A larcv3 file opened for reading sparse2d producers.

    Extents and image meta (small: 16-72 bytes per event) are read once per
    producer; voxels are read on demand, one slice per run of consecutive entries.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: no such file")
        try:
            self.h5 = h5py.File(self.path, "r")
        except OSError as err:
            raise UserError(f"{self.path}: not a readable HDF5 file ({_short(err)})") from None
        self._data, event_id = self.h5.get("Data"), self.h5.get("Events/event_id")
        if not isinstance(self._data, h5py.Group) or not isinstance(event_id, h5py.Dataset):
            self.h5.close()
            raise UserError(f"{self.path}: not a larcv3 file (no Data group or Events/event_id dataset)")
        self._index: dict[str, tuple[np.ndarray, np.ndarray, tuple[int, int]]] = {}
        self._datasets: dict[str, dict[str, h5py.Dataset]] = {}
        self._voxels: dict[str, ChunkedSlices] = {}
        self._fd = os.open(self.path, os.O_RDONLY)
        self.n_entries = int(event_id.shape[0])

    def close(self) -> None:
        self.h5.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> LarcvFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def producers(self, kind: str = "sparse2d") -> list[str]:
        prefix, suffix = f"{kind}_", "_group"
        names = [n for n in self._data if n.startswith(prefix) and n.endswith(suffix)]
        return sorted(n[len(prefix) : -len(suffix)] for n in names)

    def _where(self, producer: str, dataset: str | None = None) -> str:
        name = f"Data/{group_name(producer)}" + (f"/{dataset}" if dataset else "")
        return f"{self.path}: {name}"

    def _group(self, producer: str) -> dict[str, h5py.Dataset]:
        """The producer's four datasets, looked up once per open file."""
        if producer in self._datasets:
            return self._datasets[producer]
        group = self._data.get(group_name(producer))
        if group is None:
            known = ", ".join(self.producers()) or "none"
            raise UserError(f"{self._where(producer)}: no such sparse2d producer (this file has: {known})")
        datasets = {}
        for name in DATASETS:
            datasets[name] = group.get(name)
            if not isinstance(datasets[name], h5py.Dataset):
                raise UserError(f"{self._where(producer, name)}: missing dataset; not a larcv3 sparse2d group")
        self._datasets[producer] = datasets
        return datasets

    def _read(self, producer: str, dataset: str) -> np.ndarray:
        ds = self._group(producer)[dataset]
        try:
            # The whole dataset through the low-level call: a third of the overhead of ds[()].
            rows = np.empty(ds.shape, dtype=ds.dtype)
            if rows.size:
                ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, rows)
            return rows
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"{self._where(producer, dataset)}: unreadable ({_short(err)})") from None

    def _read_voxels(self, producer: str, lo: int, hi: int) -> np.ndarray:
        if producer not in self._voxels:
            self._voxels[producer] = ChunkedSlices(self._group(producer)["voxels"], self._fd)
        try:
            return self._voxels[producer].read(lo, hi)
        except (OSError, ValueError) as err:
            raise UserError(f"{self._where(producer, 'voxels')}: unreadable ({_short(err)})") from None

    def index(self, producer: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """(voxel start per event, voxel counts [n_events, n_planes], plane shape (H, W))."""
        if producer in self._index:
            return self._index[producer]
        group = self._group(producer)
        extents = self._read(producer, "extents")
        voxel_extents = self._read(producer, "voxel_extents")
        meta = self._read(producer, "image_meta")
        n_voxels = int(group["voxels"].shape[0])
        if len(extents) != self.n_entries:
            raise UserError(
                f"{self._where(producer, 'extents')}: {len(extents)} rows but Events/event_id has {self.n_entries}"
            )
        planes = extents["N"].astype(np.int64)
        if len(planes) and (np.any(planes != planes[0]) or planes[0] == 0):
            raise UserError(f"{self._where(producer, 'extents')}: events must all have the same number of planes")
        n_planes = int(planes[0]) if len(planes) else 3
        if len(voxel_extents) != self.n_entries * n_planes or len(meta) != len(voxel_extents):
            raise UserError(
                f"{self._where(producer, 'voxel_extents')}: {len(voxel_extents)} rows, expected "
                f"{self.n_entries * n_planes} (events x planes)"
            )
        first = voxel_extents["first"].astype(np.int64).reshape(-1, n_planes) if len(voxel_extents) else None
        counts = voxel_extents["N"].astype(np.int64).reshape(-1, n_planes)
        if first is not None:
            # larcv3 writes each event's planes back to back; the reader relies on it.
            expected = np.concatenate([[0], np.cumsum(counts.reshape(-1))[:-1]]).reshape(-1, n_planes)
            if not np.array_equal(first, expected) or int(counts.sum()) != n_voxels:
                raise UserError(
                    f"{self._where(producer, 'voxel_extents')}: voxel ranges do not tile the voxels dataset "
                    f"({int(counts.sum())} voxels listed, {n_voxels} stored)"
                )
            starts = first[:, 0]
        else:
            starts = np.zeros(0, np.int64)
        nv = meta["number_of_voxels"] if len(meta) else np.array([[FULL_SHAPE[1], FULL_SHAPE[0]]])
        if np.any(nv != nv[0]):
            raise UserError(f"{self._where(producer, 'image_meta')}: planes of different sizes are not supported")
        shape = (int(nv[0][1]), int(nv[0][0]))  # (H, W) = (ny, nx)
        self._index[producer] = (starts, counts, shape)
        return self._index[producer]

    def max_event_voxels(self, producer: str) -> int:
        return int(self.index(producer)[1].sum(axis=1).max(initial=0))

    def read(self, producer: str, entries: Iterable[int] | None = None) -> SparseEvents:
        """The events `entries` (any order, repeats allowed) of one sparse2d producer."""
        starts, counts, shape = self.index(producer)
        entries = np.arange(self.n_entries) if entries is None else np.asarray(list(entries), dtype=np.int64)
        if len(entries) and (entries.min() < 0 or entries.max() >= self.n_entries):
            raise UserError(f"{self.path}: entry {int(entries.max())} out of range (file has {self.n_entries})")
        unique = np.unique(entries)
        sizes = counts.sum(axis=1)
        ids_parts, value_parts = [], []
        for a, b in _contiguous_runs(unique):
            lo, hi = int(starts[a]), int(starts[b - 1] + sizes[b - 1])
            block = self._read_voxels(producer, lo, hi)
            if len(block) != hi - lo:
                raise UserError(f"{self._where(producer, 'voxels')}: truncated ({len(block)} of {hi - lo} voxels)")
            ids_parts.append(block["id"].astype(np.int64))
            value_parts.append(block["value"].astype(np.float32, copy=False))
        ids = _joined(ids_parts, np.int64)
        values = _joined(value_parts, np.float32)
        if len(ids) and ids.max() >= shape[0] * shape[1]:
            bad = int(ids.max())
            raise UserError(
                f"{self._where(producer, 'voxels')}: voxel id {bad} out of range for a "
                f"{shape[1]}x{shape[0]} (nx x ny) plane"
            )
        if not np.isfinite(values).all():  # a NaN charge would train to a NaN loss, recorded as a success
            bad = values[~np.isfinite(values)][0]
            raise UserError(f"{self._where(producer, 'voxels')}: voxel value {bad} (values must be finite)")
        loaded = SparseEvents(counts[unique], ids, values, shape)
        if len(unique) == len(entries) and np.array_equal(unique, entries):
            return loaded
        return loaded.select(np.searchsorted(unique, entries))

    def event_ids(self) -> np.ndarray:
        return self.h5["Events/event_id"][:]


def _joined(parts: list[np.ndarray], dtype) -> np.ndarray:
    """The parts end to end; a single part as it is (no copy)."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def _short(err: BaseException) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


# -- densify -------------------------------------------------------------------


def dense_shape(shape: tuple[int, int], downsample: int) -> tuple[int, int]:
    return (shape[0] // downsample, shape[1] // downsample)


def flat_pixel_index(rows: np.ndarray, ids: np.ndarray, shape: tuple[int, int], downsample: int = 1) -> np.ndarray:
    """Index of each voxel (plane row `rows`, larcv id `ids`) in a flat [rows, H', W'] array."""
    ny = shape[0]
    h, w = dense_shape(shape, downsample)
    x = ids // ny // downsample
    y = ids % ny // downsample
    return rows * (h * w) + y * w + x


def dense_charge(rows: np.ndarray, ids: np.ndarray, values: np.ndarray, n_rows: int, shape: tuple[int, int],
                 downsample: int = 1) -> np.ndarray:  # fmt: skip
    """Charge planes [n_rows, H', W'] float32. Downsampling by k sums each k x k block and
    divides by k^2: average pooling in which empty pixels count as zero."""
    h, w = dense_shape(shape, downsample)
    flat = flat_pixel_index(rows, ids, shape, downsample)
    if downsample > 1:
        image = np.bincount(flat, weights=values, minlength=n_rows * h * w).astype(np.float32)
        image /= downsample**2
        return image.reshape(n_rows, h, w)
    out = np.zeros((n_rows, h, w), dtype=np.float32)
    out.reshape(-1)[flat] = values
    return out


def dense_labels(rows: np.ndarray, ids: np.ndarray, labels: np.ndarray, n_rows: int, shape: tuple[int, int],
                 downsample: int = 1) -> np.ndarray:  # fmt: skip
    """Label planes [n_rows, H', W'] uint8; downsampling takes the block maximum
    (a block with any neutrino pixel is neutrino, else any cosmic pixel is cosmic)."""
    h, w = dense_shape(shape, downsample)
    out = np.zeros((n_rows, h, w), dtype=np.uint8)
    flat = flat_pixel_index(rows, ids, shape, downsample)
    labels = np.asarray(labels).astype(np.int64)
    flat_out = out.reshape(-1)
    # Assign classes in increasing order so a larger label always wins a shared pixel.
    for cls in np.unique(labels[labels > 0]):
        flat_out[flat[labels == cls]] = cls
    return out


def densify(events: SparseEvents, downsample: int = 1) -> np.ndarray:
    """Charge images [n_events, n_planes, H', W'] float32."""
    planes = dense_charge(events.plane_of_voxel(), events.ids, events.values, events.counts.size, events.shape,
                          downsample)  # fmt: skip
    return planes.reshape(events.n_events, events.n_planes, *planes.shape[1:])


def densify_labels(events: SparseEvents, downsample: int = 1) -> np.ndarray:
    """Label images [n_events, n_planes, H', W'] uint8 (0 background, 1 cosmic, 2 neutrino)."""
    planes = dense_labels(events.plane_of_voxel(), events.ids, events.values, events.counts.size, events.shape,
                          downsample)  # fmt: skip
    return planes.reshape(events.n_events, events.n_planes, *planes.shape[1:])


def sparsify(images: np.ndarray, threshold: float = 0.0) -> SparseEvents:
    """Dense [n_events, n_planes, H, W] -> SparseEvents of pixels with value > threshold."""
    n_events, n_planes, h, w = images.shape
    flat = images.reshape(n_events * n_planes, h * w)
    rows, cols = np.nonzero(flat > threshold)
    y, x = cols // w, cols % w
    ids = x * h + y
    counts = np.bincount(rows, minlength=n_events * n_planes).reshape(n_events, n_planes)
    # larcv3 stores each plane's voxels sorted by id.
    order = np.lexsort((ids, rows))
    return SparseEvents(counts.astype(np.int64), ids[order].astype(np.int64), flat[rows, cols][order], (h, w))


# -- write -----------------------------------------------------------------------


def _create(group: h5py.Group, name: str, dtype: np.dtype, compression: int) -> h5py.Dataset:
    return group.create_dataset(
        name,
        shape=(0,),
        maxshape=(None,),
        dtype=dtype,
        chunks=(CHUNKS[name],),
        compression="gzip" if compression else None,
        compression_opts=compression if compression else None,
    )


def _append(ds: h5py.Dataset, rows: np.ndarray) -> None:
    start = ds.shape[0]
    ds.resize((start + len(rows),))
    if len(rows):
        ds[start:] = rows


class _Aborted(Exception):
    """Thrown into a writer's open temporary file to drop it."""


class LarcvWriter:
    """Write sparse2d producers in larcv3's layout; events are appended in blocks.

    The file is written under a temporary name that replaces `path` on `close()`
    (`mlscale.fileio.atomic_path`), so a failed run leaves nothing half-written behind.
    """

    def __init__(self, path: str | os.PathLike, producers: Sequence[str], compression: int = COMPRESSION_LEVEL):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:  # an error in here closes and removes the temporary file
            self.tmp = stack.enter_context(atomic_path(self.path))
            self.h5 = stack.enter_context(h5py.File(self.tmp, "w"))
            self._create(producers, compression)
            self._open = stack.pop_all()

    def _create(self, producers: Sequence[str], compression: int) -> None:
        self.compression = compression
        events = self.h5.create_group("Events")
        data = self.h5.create_group("Data")
        self.event_id = _create(events, "event_id", EVENT_ID_DTYPE, compression)
        self.groups = {}
        for producer in producers:
            group = data.create_group(group_name(producer))
            self.groups[producer] = {
                "extents": _create(group, "extents", EXTENTS_DTYPE, compression),
                "voxel_extents": _create(group, "voxel_extents", ID_EXTENTS_DTYPE, compression),
                "image_meta": _create(group, "image_meta", IMAGE_META_DTYPE, compression),
                "voxels": _create(group, "voxels", VOXEL_DTYPE, compression),
            }

    def append(self, products: dict[str, SparseEvents], event_ids: np.ndarray | None = None) -> None:
        """Append the same events for every producer (all producers, every time)."""
        if set(products) != set(self.groups):
            raise ValueError(f"append needs every producer: {sorted(self.groups)}")
        n_events = {p.n_events for p in products.values()}
        if len(n_events) != 1:
            raise ValueError("all producers must hold the same number of events")
        n = n_events.pop()
        if event_ids is None:
            event_ids = np.full(n, -1, dtype=np.int64)
        ids = np.zeros(n, dtype=EVENT_ID_DTYPE)
        if np.ndim(event_ids) == 1 and np.asarray(event_ids).dtype.names is None:
            for field in EVENT_ID_DTYPE.names:
                ids[field] = -1
            ids["event"] = event_ids
        else:
            ids[:] = event_ids
        _append(self.event_id, ids)
        for producer, events in products.items():
            self._append_producer(self.groups[producer], events)

    def _append_producer(self, ds: dict[str, h5py.Dataset], events: SparseEvents) -> None:
        n, planes = events.counts.shape
        h, w = events.shape
        if len(events.ids) and (events.ids.min() < 0 or events.ids.max() >= h * w):
            raise ValueError(f"voxel id out of range for a {w}x{h} plane")
        plane_rows = ds["voxel_extents"].shape[0]
        voxel_start = ds["voxels"].shape[0]
        extents = np.zeros(n, dtype=EXTENTS_DTYPE)
        extents["first"] = plane_rows + np.arange(n, dtype=np.uint64) * planes
        extents["N"] = planes
        flat_counts = events.counts.reshape(-1)
        id_extents = np.zeros(n * planes, dtype=ID_EXTENTS_DTYPE)
        id_extents["first"] = voxel_start + np.concatenate([[0], np.cumsum(flat_counts)[:-1]])
        id_extents["N"] = flat_counts
        id_extents["ID"] = np.tile(np.arange(planes), n)
        meta = np.zeros(n * planes, dtype=IMAGE_META_DTYPE)
        meta["valid"] = 1
        meta["projection_id"] = np.tile(np.arange(planes), n)
        meta["image_sizes"] = (float(w), float(h))
        meta["number_of_voxels"] = (w, h)
        voxels = np.zeros(len(events.ids), dtype=VOXEL_DTYPE)
        voxels["id"] = events.ids
        voxels["value"] = events.values
        _append(ds["extents"], extents)
        _append(ds["voxel_extents"], id_extents)
        _append(ds["image_meta"], meta)
        _append(ds["voxels"], voxels)

    def close(self) -> Path:
        """Close the file; it replaces `path`."""
        self._open.close()
        return self.path

    def abort(self) -> None:
        """Close and remove the file; `path` stays as it was."""
        self._open.__exit__(_Aborted, _Aborted(), None)

    def __enter__(self) -> LarcvWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
