"""Fast slices of a 1-d, gzip-chunked HDF5 dataset: chunk bytes by pread, inflated in threads.

larcv3 files keep all voxels of a producer in one 1-d dataset of 1000-row gzip
chunks. Reading a slice through HDF5 inflates those chunks one after another under
h5py's global lock. Here HDF5 is asked only where each chunk lies (one
`chunk_iter` pass per dataset); the bytes are read with `os.pread` and inflated
by ISA-L (or zlib), which release the GIL, on a small thread pool, so chunks decompress in
parallel. Datasets with other filters (shuffle, checksums, szip...) or layouts
are read through h5py as usual.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np

try:  # Intel ISA-L inflates gzip about twice as fast as zlib
    from isal.isal_zlib import decompress as inflate
except ImportError:  # pragma: no cover - isal is in requirements/base.txt
    from zlib import decompress as inflate

# Chunks per slice from which inflating on the thread pool pays for its overhead.
PARALLEL_CHUNKS = int(os.environ.get("MLSCALE_H5_PARALLEL_CHUNKS", "32"))

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2)), thread_name_prefix="h5inflate")
    return _POOL


class _LayoutMismatch(Exception):
    pass


class ChunkedSlices:
    """`read(lo, hi)` returns rows lo..hi of `ds` as a numpy array of its dtype."""

    def __init__(self, ds: h5py.Dataset, fd: int):
        self.ds, self.fd = ds, fd
        self.direct = (
            ds.ndim == 1
            and ds.chunks is not None
            and ds.compression in ("gzip", None)
            and not ds.shuffle
            and not ds.fletcher32
            and ds.scaleoffset is None
        )
        self.rows = ds.chunks[0] if ds.chunks else 0
        self._offsets: np.ndarray | None = None
        self._sizes: np.ndarray | None = None

    def _index(self) -> None:
        n_chunks = -(-self.ds.shape[0] // self.rows) if self.rows else 0
        offsets = np.full(n_chunks, -1, dtype=np.int64)
        sizes = np.zeros(n_chunks, dtype=np.int64)
        masks = np.zeros(n_chunks, dtype=np.int64)

        def visit(info) -> None:
            k = info.chunk_offset[0] // self.rows
            offsets[k], sizes[k], masks[k] = info.byte_offset, info.size, info.filter_mask

        self.ds.id.chunk_iter(visit)
        if (offsets < 0).any() or masks.any():  # unallocated chunks or skipped filters: let HDF5 handle them
            self.direct = False
        self._offsets, self._sizes = offsets, sizes

    def read(self, lo: int, hi: int) -> np.ndarray:
        if hi <= lo:
            return np.zeros(0, dtype=self.ds.dtype)
        if self.direct and self._offsets is None:
            try:
                self._index()
            except (AttributeError, RuntimeError, OSError):  # HDF5 without chunk iteration
                self.direct = False
        if not self.direct:
            return self.ds[lo:hi]
        first, last = lo // self.rows, (hi - 1) // self.rows
        assert self._offsets is not None and self._sizes is not None
        chunk_bytes = self.rows * self.ds.dtype.itemsize
        gzip = self.ds.compression == "gzip"

        def load(k: int) -> bytes:
            raw = os.pread(self.fd, int(self._sizes[k]), int(self._offsets[k]))
            if len(raw) != self._sizes[k]:
                raise OSError(f"chunk {k} truncated ({len(raw)} of {self._sizes[k]} bytes)")
            try:
                data = inflate(raw) if gzip else raw
            except Exception as err:  # zlib.error / isal_zlib.error: a damaged chunk
                raise OSError(f"chunk {k} does not inflate ({err})") from None
            if len(data) != chunk_bytes:
                raise _LayoutMismatch
            return data

        ks = range(first, last + 1)
        try:
            parts = list(_pool().map(load, ks)) if len(ks) >= PARALLEL_CHUNKS else [load(k) for k in ks]
        except _LayoutMismatch:  # the file's compound layout is not the in-memory one: let HDF5 convert
            self.direct = False
            return self.ds[lo:hi]
        rows = np.frombuffer(b"".join(parts), dtype=self.ds.dtype)
        start = lo - first * self.rows
        return rows[start : start + (hi - lo)]
