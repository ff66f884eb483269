"""Synthetic CosmicTagger events: three wire-plane views of one 3-d event.

Geometry (normalised detector box, every coordinate in [0, 1]): the drift
coordinate is shared by the three views and becomes the image row y; each
plane's wire coordinate (the image column x) is a different projection of
(z, v): u = (z + v) / 2, v' = (z + 1 - v) / 2 for the two induction planes and
z itself for the collection plane. So a particle leaves consistent tracks in all
three views, which is what the UResNet's deepest layer (planes concatenated)
can learn from.

- Cosmics (label 1): long straight or gently curved tracks that enter through
  the top face (v = 1) and leave through the bottom (v = 0).
- Neutrino interaction (label 2, in a share of events): a vertex inside the box
  with 2-6 short prongs (heavily ionising: higher charge, brighter at the end).
- Noise (label 0): isolated low-charge hits and short blips.

Charges are summed where tracks overlap, labels take the maximum (neutrino over
cosmic over noise), and pixels under the 5-unit threshold of the real data are
dropped. At full resolution an event carries ~15-25k voxels per plane, like the
real files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlscale.io.larcv import DOWNSAMPLED_SHAPE, FULL_SHAPE, SparseEvents

THRESHOLD = 5.0  # the real files keep wire hits with charge >= 5
N_PLANES = 3
COSMIC, NEUTRINO = 1, 2


@dataclass
class SynthParams:
    shape: tuple[int, int] = FULL_SHAPE  # (H, W) of one plane
    cosmics: float = 4.0  # mean number of cosmic tracks per event (Poisson, at least 1)
    neutrino_fraction: float = 0.8  # share of events with a neutrino interaction
    noise: float = 0.003  # noise hits per pixel


def _project(points: np.ndarray, shape: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """3-d points [n, 3] (z, v, drift) -> per plane (x, y) float pixel coordinates."""
    h, w = shape
    z, v, d = points[:, 0], points[:, 1], points[:, 2]
    wires = ((z + v) / 2, (z + 1 - v) / 2, z)
    return [(np.clip(wc, 0, 1 - 1e-9) * w, np.clip(d, 0, 1 - 1e-9) * h) for wc in wires]


def _sample_path(start: np.ndarray, end: np.ndarray, bend: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Points along a (quadratically bent) 3-d segment, dense enough for every plane's pixels."""
    span = np.abs(end - start).max() * max(shape) * 2 + 2
    t = np.linspace(0.0, 1.0, int(span))[:, None]
    return start + (end - start) * t + bend * (t * (1 - t))


class EventGenerator:
    """Generates SparseEvents for charge (wire) and labels (cosmicseg), same voxel ids."""

    def __init__(self, params: SynthParams, seed: int):
        self.p = params
        self.rng = np.random.default_rng(seed)
        # Track thickness in rows (the drift direction): 3 pixels at full resolution.
        self.half_width = max(1, round(params.shape[0] / FULL_SHAPE[0]))

    def _deposit(self, points: np.ndarray, dedx: np.ndarray, label: int, out: list) -> None:
        h, w = self.p.shape
        k = self.half_width
        offsets = np.arange(-k, k + 1)
        profile = np.exp(-0.5 * (offsets / max(k, 1)) ** 2)
        for plane, (x, y) in enumerate(_project(points, self.p.shape)):
            xi = x.astype(np.int64)
            yi = y.astype(np.int64)[:, None] + offsets[None, :]
            xi = np.broadcast_to(xi[:, None], yi.shape)
            charge = dedx[:, None] * profile[None, :]
            keep = (yi >= 0) & (yi < h)
            ids = xi[keep] * h + yi[keep]
            out.append((plane, ids, charge[keep], np.full(ids.shape, label, np.uint8)))

    def _cosmic(self, out: list) -> None:
        rng = self.rng
        start = np.array([rng.uniform(0, 1), 1.0, rng.uniform(0, 1)])
        end = np.array([rng.uniform(0, 1), 0.0, rng.uniform(0, 1)])
        bend = rng.normal(0, 0.05, 3) * (rng.uniform() < 0.5)
        points = _sample_path(start, end, bend, self.p.shape)
        # Minimum-ionising: Landau-like fluctuations around ~1/3 of the pixel samples' sum.
        dedx = rng.gamma(4.0, 2.5, len(points)).astype(np.float32) + 4.0
        self._deposit(points, dedx, COSMIC, out)

    def _neutrino(self, out: list) -> None:
        rng = self.rng
        vertex = rng.uniform(0.2, 0.8, 3)
        for _ in range(rng.integers(2, 7)):
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            length = rng.uniform(0.02, 0.12)
            end = np.clip(vertex + direction * length, 0, 1)
            points = _sample_path(vertex, end, np.zeros(3), self.p.shape)
            t = np.linspace(0, 1, len(points))
            # Heavily ionising prongs, brightest near the stopping end (a Bragg peak).
            dedx = (rng.gamma(6.0, 2.5, len(points)) * (1.5 + 2.0 * t**4)).astype(np.float32) + 6.0
            self._deposit(points, dedx, NEUTRINO, out)

    def _noise(self, out: list) -> None:
        h, w = self.p.shape
        rng = self.rng
        for plane in range(N_PLANES):
            n = rng.poisson(self.p.noise * h * w)
            x = rng.integers(0, w, n)
            y = rng.integers(0, h, n)
            blip = rng.integers(1, 3, n)  # 1-2 rows long
            two = blip > 1
            ids = np.concatenate([x * h + y, x[two] * h + np.minimum(y[two] + 1, h - 1)])
            charge = rng.exponential(6.0, len(ids)).astype(np.float32) + THRESHOLD
            out.append((plane, ids, charge, np.zeros(len(ids), np.uint8)))

    def event(self) -> list[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]:
        """One event: per plane ((ids, charge), (ids, label))."""
        deposits: list = []
        for _ in range(max(1, self.rng.poisson(self.p.cosmics))):
            self._cosmic(deposits)
        if self.rng.uniform() < self.p.neutrino_fraction:
            self._neutrino(deposits)
        self._noise(deposits)
        planes = []
        for plane in range(N_PLANES):
            parts = [d for d in deposits if d[0] == plane]
            ids = np.concatenate([d[1] for d in parts])
            charge = np.concatenate([d[2] for d in parts]).astype(np.float64)
            label = np.concatenate([d[3] for d in parts])
            unique, inverse = np.unique(ids, return_inverse=True)
            total = np.bincount(inverse, weights=charge, minlength=len(unique)).astype(np.float32)
            top = np.zeros(len(unique), np.uint8)
            np.maximum.at(top, inverse, label)
            keep = total >= THRESHOLD
            planes.append(((unique[keep], total[keep]), (unique[keep], top[keep].astype(np.float32))))
        return planes

    def events(self, n: int) -> tuple[SparseEvents, SparseEvents]:
        generated = [self.event() for _ in range(n)]
        charge = SparseEvents.from_planes([[p[0] for p in e] for e in generated], self.p.shape)
        labels = SparseEvents.from_planes([[p[1] for p in e] for e in generated], self.p.shape)
        return charge, labels


def shape_for(resolution: str, height: int = 0, width: int = 0) -> tuple[int, int]:
    """Plane shape (H, W) for a resolution name, or explicit sizes when given."""
    if height and width:
        return (height, width)
    return FULL_SHAPE if resolution == "full" else DOWNSAMPLED_SHAPE
