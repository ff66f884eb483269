"""Synthetic AVIRIS-NG CH4 flightlines and labelled training tiles for the methane-plume workload.

A flightline has the seed's layout: 4 bands (red, green, blue radiance, CH4 matched-filter
enhancement in ppm·m), float64, BIP interleave, ``data ignore value = -9999`` on a ragged
border. The CH4 band is background noise (white plus spatially correlated), along-track
stripes (a per-column offset, as a push-broom detector leaves them) and Gaussian plumes of
varying size, strength and direction (a source that widens downwind and fades with distance).

Training tiles (``tiles.h5``): groups ``train`` and ``test``, each with ``ch4`` (N, T + 2C, T + 2C)
float32 raw ppm·m (nodata kept as -9999) and ``label`` (N,) uint8. C is the ring of real scene kept
around each tile (``--context``, 0 by default), which training for the dense form needs. Without context,
1 = a plume source lies in the central half of the tile and 30% of the negatives hold a plume whose source
lies outside it; with context, 1 = a plume source lies anywhere in the T x T tile at the centre and half
of the negatives hold a plume whose source lies in the context ring only (`plume_source`). Attributes:
``tile_size`` (T), ``context`` (C; absent in files written before it existed: 0), ``format`` =
"mlscale-plume-tiles-1".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlscale.fileio import atomic_path, atomic_write
from mlscale.io.envi import NODATA, write_envi

TILES_FORMAT = "mlscale-plume-tiles-1"
BAND_NAMES = [
    "Red Radiance (uW/nm/sr/cm2)",
    "Green Radiance (uW/nm/sr/cm2)",
    "Blue Radiance (uW/nm/sr/cm2)",
    "CH4 Absorption (ppm x m)",
]
CH4_BAND = 4  # 1-based, as in the seed


@dataclass
class Plume:
    row: float  # source position (pixels)
    col: float
    angle: float  # wind direction (radians)
    length: float  # e-folding length downwind (pixels)
    width: float  # cross-wind sigma at the source (pixels)
    strength: float  # peak enhancement (ppm·m)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-correlated noise (FFT filter; no scipy needed)."""
    white = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (fy**2 + fx**2))
    out = np.fft.irfft2(np.fft.rfft2(white) * kernel, s=shape)
    return out / (out.std() + 1e-12)


def random_plume(rng: np.random.Generator, row: float, col: float) -> Plume:
    return Plume(
        row=row,
        col=col,
        angle=float(rng.uniform(0, 2 * np.pi)),
        length=float(rng.uniform(15, 70)),
        width=float(rng.uniform(2, 6)),
        strength=float(rng.uniform(800, 2500)),
    )


def render_plume(shape: tuple[int, int], plume: Plume, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian plume: a cross-wind Gaussian that widens downwind and decays with distance,
    with some turbulence so that no two plumes look alike."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    dr, dc = rows - plume.row, cols - plume.col
    along = dr * np.sin(plume.angle) + dc * np.cos(plume.angle)
    across = -dr * np.cos(plume.angle) + dc * np.sin(plume.angle)
    sigma = plume.width + 0.25 * np.clip(along, 0, None)
    downwind = np.where(
        along >= 0, np.exp(-np.clip(along, 0, None) / plume.length), np.exp(-(along**2) / (2 * plume.width**2))
    )
    field = plume.strength * downwind * np.exp(-(across**2) / (2 * sigma**2)) * plume.width / sigma
    turbulence = 1 + 0.35 * smooth_noise(rng, shape, 3.0)
    return np.clip(field * turbulence, 0, None)


def ch4_background(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Matched-filter background: noisy around ~100 ppm·m, correlated clutter, along-track stripes."""
    white = rng.normal(0.0, 110.0, shape)
    clutter = 60.0 * smooth_noise(rng, shape, 12.0)
    stripes = 35.0 * smooth_noise(rng, (1, shape[1]), 1.5) + 15.0 * rng.standard_normal((1, shape[1]))
    return 90.0 + white + clutter + stripes


def nodata_border(rng: np.random.Generator, shape: tuple[int, int], max_width: int) -> np.ndarray:
    """Mask of the ragged −9999 border: slanted left/right edges and a few rows at each end."""
    lines, samples = shape
    mask = np.zeros(shape, dtype=bool)
    t = np.linspace(0, 1, lines)
    left = (rng.uniform(0, max_width) * (1 - t) + rng.uniform(0, max_width) * t).astype(int)
    right = (rng.uniform(0, max_width) * t + rng.uniform(0, max_width) * (1 - t)).astype(int)
    cols = np.arange(samples)[None, :]
    mask |= cols < left[:, None]
    mask |= cols >= samples - right[:, None]
    mask[: int(rng.integers(1, 4))] = True
    mask[lines - int(rng.integers(1, 4)) :] = True
    return mask


def make_flightline(
    rng: np.random.Generator, lines: int, samples: int, plumes: int, margin: int = 40
) -> tuple[np.ndarray, list[Plume]]:
    """(4, lines, samples) float64 radiance + CH4, with -9999 borders, and the plumes placed in it."""
    shape = (lines, samples)
    ch4 = ch4_background(rng, shape)
    placed: list[Plume] = []
    for _ in range(plumes):
        row = rng.uniform(margin, max(margin + 1, lines - margin))
        col = rng.uniform(margin, max(margin + 1, samples - margin))
        plume = random_plume(rng, row, col)
        ch4 += render_plume(shape, plume, rng)
        placed.append(plume)
    terrain = smooth_noise(rng, shape, 25.0)
    rgb = [np.clip(base + 2.5 * terrain + 0.3 * rng.standard_normal(shape), 0, None) for base in (9.0, 8.0, 7.0)]
    data = np.stack([*rgb, ch4])
    data[:, nodata_border(rng, shape, max_width=max(2, samples // 25))] = NODATA
    return data, placed


NODATA_TILES = 0.1  # share of the seed's training tiles (no context) that overlap a flightline's nodata border
RING_PLUMES = 0.5  # share of the negatives of a tile with context whose plume lies in the context ring only


def plume_source(
    rng: np.random.Generator, size: int, positive: bool, off_centre: float = 0.3, context: int = 0
) -> tuple[float, float] | None:
    """Where the plume of a (size + 2 context)^2 training crop starts (row, col), or None for no plume.

    Without context (the seed's tiles) a positive's source is in the tile's central half and a fraction
    `off_centre` of the negatives get one outside it, so that the classifier learns to answer for the tile's
    centre. With context (training for the dense form) a positive's source is anywhere in the tile and a
    fraction RING_PLUMES of the negatives get one in the context ring only: the in-context answer averages
    the tile's own output cells alike, so it cannot tell a source in the central half from one in the
    tile's outer part, and labels that asked it to would set the tile and in-context losses against each
    other."""
    if context:
        lo, hi, share = context, context + size, RING_PLUMES
    else:
        lo, hi, share = size / 4, 3 * size / 4, off_centre
    if positive:
        return float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi))
    if rng.random() >= share:
        return None
    row, col = rng.uniform(0, size + 2 * context, 2)
    while lo <= row < hi and lo <= col < hi:  # a source outside the labelled region
        row, col = rng.uniform(0, size + 2 * context, 2)
    return float(row), float(col)


def make_tile(
    rng: np.random.Generator, size: int, positive: bool, off_centre: float = 0.3, context: int = 0
) -> np.ndarray:
    """One CH4 tile, with `context` px of the same scene around it ((size + 2 context)^2), its plume (if
    any) placed by `plume_source`. With context 0 the seed's tile, a share NODATA_TILES of them over a
    nodata border; with context, a tile from inside the flightline."""
    full = size + 2 * context
    shape = (full, full)
    tile = ch4_background(rng, shape)
    source = plume_source(rng, size, positive, off_centre, context)
    if source is not None:
        tile += render_plume(shape, random_plume(rng, *source), rng)
    # Only the seed's tiles (no context) overlap a nodata border: nodata around tiles with context cost the
    # dense form's training about 0.03 of correlation (docs/notes/methane-plume-history.md). The draw is made
    # either way, so that a seed gives the tiles with context that the benchmark's figures were measured on.
    if rng.random() < NODATA_TILES and not context:
        edge = int(rng.integers(1, size // 4))
        side = int(rng.integers(4))
        view = np.rot90(tile, side)
        view[:, : context + edge] = NODATA
    return tile.astype(np.float32)


def write_tiles(
    path: Path,
    rng: np.random.Generator,
    counts: dict[str, int],
    size: int,
    positive_fraction: float,
    context: int = 0,
) -> dict[str, int]:
    """Write tiles.h5 (temp name, renamed at the end); returns positives per split. With `context`, each
    stored tile carries that many px of scene around it (attribute ``context``)."""
    import h5py

    positives: dict[str, int] = {}
    full = size + 2 * context
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["format"] = TILES_FORMAT
        h5.attrs["tile_size"] = size
        h5.attrs["context"] = context
        for split, n in counts.items():
            labels = np.zeros(n, dtype=np.uint8)
            labels[: max(1, round(n * positive_fraction))] = 1
            rng.shuffle(labels)
            group = h5.create_group(split)
            ch4 = group.create_dataset("ch4", (n, full, full), dtype="f4", chunks=(1, full, full))
            for i, label in enumerate(labels):
                ch4[i] = make_tile(rng, size, bool(label), context=context)
            group.create_dataset("label", data=labels)
            positives[split] = int(labels.sum())
    return positives


def write_flightline(path: Path, data: np.ndarray, plumes: list[Plume]) -> Path:
    """Seed layout: float64 BIP ENVI (data file without extension, as AVIRIS-NG names them) plus
    ``<name>_plumes.json`` with the plumes' true positions."""
    written = write_envi(path, data, nodata=NODATA, band_names=BAND_NAMES, dtype="float64", interleave="bip")
    truth = [plume.__dict__ for plume in plumes]
    atomic_write(path.with_name(path.name + "_plumes.json"), json.dumps(truth, indent=1) + "\n")
    return written
