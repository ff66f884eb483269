"""Distributed loading of CosmicTagger events: three strategies, one batch order.

Every strategy hands rank r, at step s, the same events: the epoch's order of
entries (a seeded permutation, or file order without shuffling) is cut into
global batches of G = size x L events, and rank r takes the r-th slice of L.

- scatter (a, the original's design): the root reads the whole global batch,
  packs each event's voxels into a fixed-size buffer sized to the largest event
  in the file, and scatters the buffers; each rank densifies its share.
- indices (b): the root scatters the epoch's entry indices once; each rank
  reads and densifies its own events.
- shard (c): each rank owns a static shard of the file (the entries its slot
  takes in file order) and reads only those; with shuffling it permutes within
  its shard, so batches differ from (a)/(b) but every entry is still seen once
  per epoch.

A background thread reads (and, for b/c, densifies) the next batches while the
model computes; collectives stay on the calling thread, so they never interleave
with the training step's own collectives.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlscale.bench.batching import divides_evenly
from mlscale.errors import UserError
from mlscale.io import sparse_pack
from mlscale.io.larcv import LarcvFile, dense_charge, dense_labels, dense_shape
from mlscale.io.sparse_pack import PACKED_DTYPE
from mlscale.workloads.cosmic_tagger.config import STRATEGIES


@dataclass
class LoaderStats:
    """What this rank read from disk and received from the root."""

    events_read: int = 0
    bytes_read: int = 0  # voxel records read from the file (16 bytes each, both producers)
    bytes_received: int = 0  # scattered buffer bytes (strategy a)
    batches: int = 0
    read_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def epoch_plan(n_entries: int, global_batch: int, size: int, epoch: int, seed: int, shuffle: bool) -> np.ndarray:
    """Entries per [step, rank, slot] for strategies scatter and indices."""
    steps = n_entries // global_batch
    order = np.random.default_rng([seed, epoch]).permutation(n_entries) if shuffle else np.arange(n_entries)
    return order[: steps * global_batch].reshape(steps, size, global_batch // size)


def shard_plan(n_entries: int, global_batch: int, size: int, rank: int, epoch: int, seed: int,
               shuffle: bool) -> np.ndarray:  # fmt: skip
    """Entries per [step, slot] of one rank's static shard (strategy shard)."""
    plan = epoch_plan(n_entries, global_batch, size, 0, seed, False)[:, rank, :]
    if shuffle:
        flat = plan.reshape(-1)
        plan = np.random.default_rng([seed, epoch, rank]).permutation(flat).reshape(plan.shape)
    return plan


class CosmicLoader:
    """This rank's batches: (charge float32 [L, P, H', W'], labels uint8 [L, P, H', W'], entries int64 [L])."""

    def __init__(self, path: str | Path, comm, global_batch: int, strategy: str = "scatter",
                 image_producer: str = "sbndwire", label_producer: str = "sbnd_cosmicseg", downsample: int = 1,
                 shuffle: bool = True, seed: int = 0, prefetch: int = 2, as_torch: bool = True):  # fmt: skip
        if strategy not in STRATEGIES:
            raise UserError(f"--io-strategy {strategy!r} is not one of: {', '.join(STRATEGIES)}")
        if not divides_evenly(global_batch, comm.size):
            raise UserError(
                f"global batch {global_batch} does not divide by the {comm.size} ranks "
                f"(cosmic-tagger needs global batch = ranks x events per rank)"
            )
        self.path, self.comm, self.strategy = Path(path), comm, strategy
        self.global_batch, self.local_batch = global_batch, global_batch // comm.size
        self.producers = (image_producer, label_producer)
        self.downsample, self.shuffle, self.seed = downsample, shuffle, seed
        self.prefetch, self.as_torch = max(1, prefetch), as_torch
        self.stats = LoaderStats()
        self.epoch = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.file: LarcvFile | None = None
        self._recv: np.ndarray | None = None  # strategy scatter's receive buffer
        # The root checks the file and tells everyone what they need to allocate buffers, or the
        # error, so every rank fails with the same one-line message.
        facts = comm.bcast(self._open_and_inspect() if comm.is_root else None)
        if "error" in facts:
            raise UserError(facts["error"])
        if strategy != "scatter" and not comm.is_root:
            self.file = LarcvFile(self.path)  # strategies b and c read on every rank
        self.n_entries, self.shape, self.n_planes, self.max_voxels = (
            facts["n_entries"], tuple(facts["shape"]), facts["n_planes"], facts["max_voxels"],
        )  # fmt: skip
        if not sparse_pack.fits(self.n_planes, self.shape):
            raise UserError(f"{self.path}: planes of {self.shape[1]}x{self.shape[0]} are too large for packed buffers")
        if self.n_entries < global_batch:
            raise UserError(f"{self.path}: {self.n_entries} events, fewer than one global batch of {global_batch}")
        if downsample < 1 or self.shape[0] % downsample or self.shape[1] % downsample:
            raise UserError(
                f"{self.path}: planes of {self.shape[1]}x{self.shape[0]} cannot be downsampled by {downsample}"
            )

    def _open_and_inspect(self) -> dict:
        try:
            self.file = LarcvFile(self.path)
            return self._inspect(self.file)
        except UserError as err:
            return {"error": str(err)}

    def _inspect(self, f: LarcvFile) -> dict:
        image, label = self.producers
        _, counts, shape = f.index(image)
        _, label_counts, label_shape = f.index(label)
        if not np.array_equal(counts, label_counts) or shape != label_shape:
            raise UserError(
                f"{f.path}: Data/sparse2d_{label}_group does not match Data/sparse2d_{image}_group "
                f"(labels must sit on the same voxels as the charge)"
            )
        return {
            "n_entries": f.n_entries,
            "shape": shape,
            "n_planes": int(counts.shape[1]) if counts.size else 3,
            "max_voxels": f.max_event_voxels(image),
        }

    @property
    def dense_shape(self) -> tuple[int, int]:
        return dense_shape(self.shape, self.downsample)

    def __len__(self) -> int:
        return self.n_entries // self.global_batch

    # -- reading -------------------------------------------------------------------
    def _read(self, entries: np.ndarray):
        image, label = self.producers
        assert self.file is not None
        charge = self.file.read(image, entries)
        labels = self.file.read(label, entries)
        if len(labels.values) and (labels.values.min() < 0 or labels.values.max() > 2):
            raise UserError(
                f"{self.path}: Data/sparse2d_{label}_group/voxels: labels must be 0 (background), 1 (cosmic) "
                f"or 2 (neutrino), found {labels.values.min():g}..{labels.values.max():g}"
            )
        self.stats.events_read += len(entries)
        self.stats.bytes_read += 16 * (len(charge.ids) + len(labels.ids))
        return charge, labels

    def _dense_batch(self, entries: np.ndarray):
        charge, labels = self._read(entries)
        rows = charge.plane_of_voxel()
        n_rows = charge.counts.size
        x = dense_charge(rows, charge.ids, charge.values, n_rows, self.shape, self.downsample)
        y = dense_labels(rows, labels.ids, labels.values, n_rows, self.shape, self.downsample)
        return self._finish(x, y, entries)

    def _finish(self, x: np.ndarray, y: np.ndarray, entries: np.ndarray):
        h, w = self.dense_shape
        x = x.reshape(-1, self.n_planes, h, w)
        y = y.reshape(-1, self.n_planes, h, w)
        entries = np.asarray(entries, dtype=np.int64)
        if self.as_torch:
            import torch

            return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(entries)
        return x, y, entries

    def _packed_global_batch(self, entries: np.ndarray) -> np.ndarray:
        """[size, L, max_voxels] fixed-size buffers; index = plane * H * W + larcv id."""
        charge, labels = self._read(entries.reshape(-1))
        if not np.array_equal(labels.ids, charge.ids):
            # One slot carries a voxel's charge and its label; the file only promised equal counts.
            image, label = self.producers
            raise UserError(
                f"{self.path}: Data/sparse2d_{label}_group/voxels: label voxels are not the "
                f"Data/sparse2d_{image}_group voxels (--io-strategy scatter needs them to be; indices or shard do not)"
            )
        sizes = charge.event_sizes()
        if sizes.max(initial=0) > self.max_voxels:
            raise UserError(f"{self.path}: an event has more voxels than the largest one indexed")
        buf = sparse_pack.pack(charge, labels, self.n_planes, self.max_voxels)
        return buf.reshape(self.comm.size, self.local_batch, self.max_voxels)

    def _unpack(self, buf: np.ndarray, entries: np.ndarray):
        rows, ids, values, label = sparse_pack.unpack(buf, self.n_planes, self.shape)
        n_rows = len(buf) * self.n_planes
        x = dense_charge(rows, ids, values, n_rows, self.shape, self.downsample)
        y = dense_labels(rows, ids, label, n_rows, self.shape, self.downsample)
        return self._finish(x, y, entries)

    # -- background thread ---------------------------------------------------------
    def _start(self, work) -> queue.Queue:
        self._halt()
        self._stop = stop = threading.Event()
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)

        def run():
            try:
                for item in work():
                    while not stop.is_set():
                        try:
                            q.put(("ok", item), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            except BaseException as err:  # handed to the consumer, re-raised there
                q.put(("error", err))

        self._thread = threading.Thread(target=run, name=f"cosmic-prefetch-{self.strategy}", daemon=True)
        self._thread.start()
        return q

    def _halt(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    @staticmethod
    def _take(q: queue.Queue):
        kind, item = q.get()
        if kind == "error":
            raise item
        return item

    def close(self) -> None:
        self._halt()
        if self.file is not None:
            self.file.close()
            self.file = None

    # -- iteration -----------------------------------------------------------------
    def my_plan(self, epoch: int) -> np.ndarray:
        """This rank's entries per [step, slot] for an epoch (strategy indices scatters it from the root)."""
        size, rank = self.comm.size, self.comm.rank
        if self.strategy == "shard":
            return shard_plan(self.n_entries, self.global_batch, size, rank, epoch, self.seed, self.shuffle)
        if self.strategy == "indices":
            chunks = None
            if self.comm.is_root:
                plan = epoch_plan(self.n_entries, self.global_batch, size, epoch, self.seed, self.shuffle)
                chunks = [np.ascontiguousarray(plan[:, r, :]) for r in range(size)]
            return self.comm.scatter_array(chunks)
        return epoch_plan(self.n_entries, self.global_batch, size, epoch, self.seed, self.shuffle)[:, rank, :]

    def __iter__(self) -> Iterator:
        epoch, self.epoch = self.epoch, self.epoch + 1
        if self.strategy == "scatter":
            return self._iter_scatter(epoch)
        plan = self.my_plan(epoch)
        q = self._start(lambda: (self._dense_batch(entries) for entries in plan))
        return self._iter_queue(q, len(plan))

    def _iter_queue(self, q: queue.Queue, steps: int) -> Iterator:
        for _ in range(steps):
            self.stats.batches += 1
            yield self._take(q)

    def _iter_scatter(self, epoch: int) -> Iterator:
        size, rank = self.comm.size, self.comm.rank
        plan = epoch_plan(self.n_entries, self.global_batch, size, epoch, self.seed, self.shuffle)
        q = self._start(lambda: (self._packed_global_batch(p) for p in plan)) if self.comm.is_root else None
        # Every rank knows the buffer shape, so only the data travels, into one receive buffer for the
        # loader's life (each step's batch is densified out of it before the next step overwrites it;
        # a fresh one per step would page-fault in again every time).
        if self._recv is None:
            self._recv = np.zeros((self.local_batch, self.max_voxels), dtype=PACKED_DTYPE)
        buf = self._recv
        for step in range(len(plan)):
            self.comm.scatter_array(self._take(q) if q is not None else None, out=buf)
            self.stats.bytes_received += buf.nbytes
            self.stats.batches += 1
            yield self._unpack(buf, plan[step, rank])
