"""Fast slices of a 1-d, gzip-chunked HDF5 dataset: chunk bytes by pread, inflated in threads.

larcv3 files keep all voxels of a producer in one 1-d dataset of 1000-row gzip
chunks (16 KB inflated). Reading a slice through HDF5 inflates those chunks one
after another under h5py's global lock. Here HDF5 is asked only where each chunk
lies (one `chunk_iter` pass per dataset and open file); a slice then costs:

- one `os.pread` per run of chunks that lie back to back in the file (they
  normally do; appends interleaved with other datasets break the runs);
- one inflate per chunk, straight into a preallocated output buffer, by
  libdeflate (the `deflate` package: knows the output size, checks the adler32,
  about 2x zlib), or zlib where it is missing. Both release the GIL, so the
  chunks of a slice are inflated in parallel, in groups of several chunks that
  the calling thread and a few pool threads take in turn (one pool task per
  chunk would cost more in hand-offs than it saves);
- nothing for the chunk shared with the previous slice (kept from the last read),
  which event-by-event reading would otherwise inflate twice.

Datasets with other filters (shuffle, checksums, szip...), unallocated chunks, or
a file type that differs from the in-memory one are read through h5py as usual.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np

try:
    from deflate import DeflateError
    from deflate import zlib_decompress as _libdeflate
except ImportError:  # pragma: no cover - deflate is in requirements/base.txt
    _libdeflate = None
    DeflateError = zlib.error


def _zlib(raw, size: int):
    return zlib.decompress(raw, bufsize=size + 1)


# inflate(compressed chunk, its inflated size) -> the bytes
INFLATERS = {"zlib": _zlib} | ({"libdeflate": _libdeflate} if _libdeflate is not None else {})
# MLSCALE_H5_INFLATE picks one (benchmarks compare them); default: the fastest installed.
INFLATER = os.environ.get("MLSCALE_H5_INFLATE") or ("libdeflate" if _libdeflate is not None else "zlib")
# Chunks a thread takes at a time; fewer would cost more in hand-offs than the inflate they move.
CHUNKS_PER_TASK = int(os.environ.get("MLSCALE_H5_CHUNKS_PER_TASK", "8"))
# MLSCALE_H5_THREADS fixes the number of inflating threads (1: the calling thread only) and turns the load
# rule of idle_cores() off, for reproducible measurements; unset: up to one per core, as the load allows.
FIXED_THREADS = int(os.environ.get("MLSCALE_H5_THREADS", "0"))
WORKERS = FIXED_THREADS or max(
    1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
)

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, WORKERS - 1), thread_name_prefix="h5inflate")
    return _POOL


def idle_cores() -> int:
    """Cores with nothing to run, by the 1-minute load average, counting this thread's own core.

    Threads inflating on a core that is already busy take turns at the GIL instead of
    running side by side, and each turn is a context switch: a few microseconds per
    chunk lost, not gained. So the pool is used only where the load leaves cores idle."""
    if FIXED_THREADS:
        return WORKERS
    return WORKERS - int(os.getloadavg()[0] + 0.5) + 1


def _same_layout(ds: h5py.Dataset) -> bool:
    """True when the file's element type is byte for byte the numpy dtype h5py gives it."""
    try:
        return bool(ds.id.get_type().equal(h5py.h5t.py_create(ds.dtype)))
    except (TypeError, ValueError):
        return False


class ChunkedSlices:
    """`read(lo, hi)` returns rows lo..hi of `ds` as a numpy array of its dtype."""

    def __init__(self, ds: h5py.Dataset, fd: int):
        self.ds, self.fd = ds, fd
        self.dtype = ds.dtype
        self.direct = (
            ds.ndim == 1
            and ds.chunks is not None
            and ds.compression in ("gzip", None)
            and not ds.shuffle
            and not ds.fletcher32
            and ds.scaleoffset is None
            and _same_layout(ds)
        )
        self.rows = ds.chunks[0] if ds.chunks else 0
        self.chunk_bytes = self.rows * self.dtype.itemsize
        self.gzip = ds.compression == "gzip"
        self.inflate = INFLATERS[INFLATER]
        self._offsets: list[int] | None = None
        self._sizes: list[int] = []
        self._kept: tuple[int, np.ndarray] | None = None  # (chunk, its inflated bytes) from the last read

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
        self._offsets, self._sizes = offsets.tolist(), sizes.tolist()

    def read(self, lo: int, hi: int) -> np.ndarray:
        if hi <= lo:
            return np.zeros(0, dtype=self.dtype)
        if self.direct and self._offsets is None:
            try:
                self._index()
            except (AttributeError, RuntimeError, OSError):  # HDF5 without chunk iteration
                self.direct = False
        if not self.direct:
            return self.ds[lo:hi]
        first, last = lo // self.rows, (hi - 1) // self.rows
        out = np.empty((last - first + 1) * self.chunk_bytes, dtype=np.uint8)
        todo = first
        kept = self._kept
        if kept is not None and kept[0] == first:
            out[: self.chunk_bytes] = kept[1]
            todo += 1
        self._load(todo, last + 1, out, first)
        self._kept = (last, out[-self.chunk_bytes :].copy())
        start = lo - first * self.rows
        return out.view(self.dtype)[start : start + (hi - lo)]

    def _load(self, a: int, b: int, out: np.ndarray, base: int) -> None:
        """Inflate chunks a..b-1 into `out`, whose first chunk is `base`.

        The chunks go in groups of CHUNKS_PER_TASK to whichever thread asks next: this
        one and up to WORKERS - 1 pool threads. This thread never waits for a pool thread
        that has not started (on a busy machine it may start late): it does the work
        itself and waits only for groups already being inflated elsewhere."""
        n_groups = -(-(b - a) // CHUNKS_PER_TASK)
        helpers = min(WORKERS, n_groups, idle_cores()) - 1
        if helpers <= 0:
            self._load_span(a, b, out, base)
            return
        groups = iter(range(a, b, CHUNKS_PER_TASK))  # next() on it is atomic under the GIL

        def work() -> None:
            for k in groups:
                self._load_span(k, min(k + CHUNKS_PER_TASK, b), out, base)

        futures = [_pool().submit(work) for _ in range(helpers)]
        try:
            work()
        finally:
            for _ in groups:  # after an error: leave nothing for the pool threads to start
                pass
            for future in futures:
                if not future.cancel():
                    future.result()

    def _load_span(self, a: int, b: int, out: np.ndarray, base: int) -> None:
        offsets, sizes, cb = self._offsets, self._sizes, self.chunk_bytes
        assert offsets is not None
        inflate = self.inflate if self.gzip else None
        target = memoryview(out)
        k = a
        while k < b:
            # One pread for the run of chunks that follow each other in the file.
            end = k + 1
            while end < b and offsets[end] == offsets[end - 1] + sizes[end - 1]:
                end += 1
            start = offsets[k]
            span = offsets[end - 1] + sizes[end - 1] - start
            raw = memoryview(os.pread(self.fd, span, start))
            if len(raw) != span:
                raise OSError(f"chunk {k}: file truncated ({len(raw)} of {span} bytes)")
            for j in range(k, end):
                data = raw[offsets[j] - start : offsets[j] - start + sizes[j]]
                if inflate is not None:
                    try:
                        data = inflate(data, cb)
                    except (DeflateError, zlib.error) as err:  # a damaged chunk
                        raise OSError(f"chunk {j} does not inflate ({err})") from None
                if len(data) != cb:
                    raise OSError(f"chunk {j} holds {len(data)} bytes, expected {cb}")
                at = (j - base) * cb
                target[at : at + cb] = data
            k = end
