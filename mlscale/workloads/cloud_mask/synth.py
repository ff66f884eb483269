"""Synthetic SLSTR scenes: sea and land under textured clouds, by day or by night.

Fields are built on the 500 m an grid (2H x 2W) and averaged onto the 1 km in grid (H x W):

- clouds: a fractal field whose excess over a threshold is an optical thickness; opacity is
  1 - exp(-tau), so cloud edges fade and thin cloud is barely visible. The Bayesian mask
  (`bayes_in`, the label) marks in-grid pixels whose opacity exceeds 0.35: thin cloud below it
  is a little bright and cold but labelled clear, which keeps the task from being trivial;
- visible/SWIR reflectances: dark sea, brighter land (high in the near infrared), bright cloud,
  mixed by opacity; radiance = reflectance E0 mu0 / pi, so the converter's pi L / (E0 mu0) gives
  the reflectance back. At night the sun is down and the radiances are fill values (NaN when read);
- thermal brightness temperatures: warm surface, cold cloud tops (220-270 K), mixed by opacity;
  S9 below S8 more under thin cloud; S7 warmer over cloud by day (reflected sunlight).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Solar irradiance E0 of S1..S6 (mW m-2 sr-1 nm-1 x pi scale), close to the products' values.
SOLAR_IRRADIANCE = (1837.39, 1525.94, 956.17, 365.90, 248.33, 78.33)
SEA_REFLECTANCE = np.array([0.04, 0.03, 0.02, 0.002, 0.01, 0.005])
LAND_REFLECTANCE = np.array([0.08, 0.10, 0.30, 0.004, 0.25, 0.15])
CLOUD_REFLECTANCE = np.array([0.75, 0.72, 0.70, 0.15, 0.45, 0.30])
LABEL_OPACITY = 0.35


def fractal(rng: np.random.Generator, shape: tuple[int, int], scales=(64, 32, 16, 8, 4), slope: float = 1.0):
    """Zero-mean, unit-std textured noise: octaves of upsampled white noise, coarse ones strongest."""
    from skimage.transform import resize

    out = np.zeros(shape)
    for scale in scales:
        coarse = rng.standard_normal((shape[0] // scale + 2, shape[1] // scale + 2))
        out += (
            scale**slope
            * resize(coarse, (shape[0] + 2 * scale, shape[1] + 2 * scale), order=3)[
                scale : scale + shape[0], scale : scale + shape[1]
            ]
        )
    return (out - out.mean()) / (out.std() + 1e-12)


def to_in_grid(field: np.ndarray) -> np.ndarray:
    """Average 2x2 an-grid pixels into one in-grid pixel."""
    h, w = field.shape[0] // 2, field.shape[1] // 2
    return field[: 2 * h, : 2 * w].reshape(h, 2, w, 2, *field.shape[2:]).mean(axis=(1, 3))


@dataclass
class SceneFields:
    """What a product's files are written from."""

    reflectance: np.ndarray  # (2H, 2W, 6) top-of-atmosphere reflectance, an grid
    bt: np.ndarray  # (H, W, 3) kelvin, in grid
    cloud: np.ndarray  # (H, W) bool: the Bayesian label
    opacity: np.ndarray  # (H, W) cloud opacity in [0, 1)
    land: np.ndarray  # (H, W) bool
    sst: np.ndarray  # (H, W) sea surface temperature, kelvin


def make_scene(rng: np.random.Generator, rows: int, columns: int, day: bool) -> SceneFields:
    an = (2 * rows, 2 * columns)
    scales = tuple(s for s in (128, 64, 32, 16, 8, 4) if s <= max(4, min(an) // 2))
    land_frac = rng.choice([0.0, 0.2, 0.4])
    relief = fractal(rng, an, scales[:3] or (4,), 1.5)
    land_an = relief > np.quantile(relief, 1 - land_frac) if land_frac else np.zeros(an, bool)
    cover_target = rng.uniform(0.2, 0.7)
    depth = fractal(rng, an, scales, 0.8)
    tau = np.clip(depth - np.quantile(depth, 1 - cover_target), 0, None) * rng.uniform(2.0, 4.0)
    opacity_an = 1 - np.exp(-tau)
    texture = 0.75 + 0.25 * np.tanh(fractal(rng, an, scales[-3:] or (4,)))
    surface = np.where(land_an[..., None], LAND_REFLECTANCE, SEA_REFLECTANCE)
    surface = surface * (1 + 0.15 * fractal(rng, an, scales[:2] or (4,))[..., None])
    reflectance = (1 - opacity_an[..., None]) * surface + opacity_an[..., None] * CLOUD_REFLECTANCE * texture[..., None]
    reflectance += rng.normal(0, 0.004, reflectance.shape)

    opacity = to_in_grid(opacity_an)
    land = to_in_grid(land_an.astype(float)) > 0.5
    in_shape = (rows, columns)
    sea_t = 288 + 6 * fractal(rng, in_shape, scales[:2] or (4,)) / 3 + rng.uniform(-5, 5)
    surface_t = np.where(land, sea_t + (6 if day else -6) + 3 * fractal(rng, in_shape, scales[-3:] or (4,)), sea_t)
    cloud_top = 245 + 20 * np.tanh(fractal(rng, in_shape, scales[:3] or (4,)))
    s8 = (1 - opacity) * surface_t + opacity * cloud_top
    thin = opacity * (1 - opacity)  # largest where the cloud is semi-transparent
    s9 = s8 - 0.6 - 6 * thin
    s7 = s8 + (12 * opacity if day else -2 * opacity)
    bt = np.stack([s7, s8, s9], -1) + rng.normal(0, 0.12, (*in_shape, 3))
    return SceneFields(reflectance, bt, opacity > LABEL_OPACITY, opacity, land, sea_t)


def bayes_values(fields: SceneFields) -> np.ndarray:
    """`bayes_in` on the in grid: 0 clear, 1 (single_low) thin cloud, 2 (single_moderate) thick cloud."""
    return np.where(fields.cloud, np.where(fields.opacity > 0.7, 2, 1), 0).astype(np.uint8)


def tie_point_angles(rng: np.random.Generator, shape: tuple[int, int], day: bool) -> dict[str, np.ndarray]:
    """Solar and satellite angles on the tie-point grid; the outermost two columns are NaN, as in products."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    base = rng.uniform(25, 60) if day else rng.uniform(115, 145)
    sza = base + 12 * rows / max(shape[0] - 1, 1) + 6 * (cols / max(shape[1] - 1, 1) - 0.5)
    across = np.abs(cols - shape[1] / 2) / (shape[1] / 2)
    angles = {
        "solar_zenith_tn": sza,
        "solar_azimuth_tn": 120 + 10 * cols / max(shape[1] - 1, 1),
        "sat_zenith_tn": 55 * across,
        "sat_azimuth_tn": np.where(cols < shape[1] / 2, 100.0, 280.0),
    }
    for values in angles.values():
        values[:, :2] = np.nan
        values[:, -2:] = np.nan
    return angles
