"""A synthetic stream seen by a fixed time-lapse camera.

The scene is drawn once per station (`Station`): sky, a tree line, grassy banks and a channel
that widens towards the camera (perspective), a few boulders in the bed and a staff gauge.
Each photo (`Station.photo`) fills the channel to a stage set by the flow: the water widens,
climbs the gauge and covers the boulders, and turns brown and white at high flow. Nuisances that
a model must learn to ignore: daylight and its colour over the day, clouds, rain and fog, the
season's vegetation, ripples, sensor noise and a slightly jittering camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

WEATHER = ("sun", "cloud", "rain", "fog")
WEATHER_ODDS = (0.5, 0.3, 0.12, 0.08)


@dataclass
class Conditions:
    """What changes from one photo to the next besides the flow."""

    hour: float  # local solar time
    day_of_year: float
    weather: str


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid resized bilinearly."""
    grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(grid).resize((width, height), Image.BILINEAR), np.float32) / 255


class Station:
    def __init__(self, height: int, width: int, rng: np.random.Generator):
        self.h, self.w = height, width
        y = np.arange(height, dtype=np.float32)[:, None]
        self.x = np.arange(width, dtype=np.float32)[None, :]
        self.horizon = int(height * rng.uniform(0.25, 0.35))
        depth = np.clip((y - self.horizon) / (height - self.horizon), 0, 1)  # 0 far .. 1 near
        self.near = 0.15 + 0.85 * depth  # perspective scale of each row
        phase = rng.uniform(0, 2 * np.pi)
        self.centre = width * (0.5 + 0.08 * np.sin(2.5 * depth + phase))
        self.bed = width * 0.05 * self.near  # half-width of the channel at the lowest stage
        self.gain = width * 0.28 * self.near  # ... added at the highest stage
        self.ground = y >= self.horizon
        offset = np.abs(self.x - self.centre)
        self.offset = offset
        self.grass = self.ground & (offset > width * 0.36 * self.near)
        self.background = self._background(rng, y)
        self.boulders = self._boulders(rng)
        self.gauge = self._gauge(rng)

    def _background(self, rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
        h, w = self.h, self.w
        sky = np.array([0.55, 0.7, 0.92]) + (y / max(self.horizon, 1))[..., None] * np.array([0.25, 0.15, 0.0])
        img = np.broadcast_to(sky, (h, w, 3)).astype(np.float32).copy()
        tree_top = self.horizon - h * (0.06 + 0.08 * _smooth_noise(rng, 1, w, 12)[0])
        self.trees = (y >= tree_top[None, :]) & ~self.ground
        texture = _smooth_noise(rng, h, w, 24)
        rock = (0.42 + 0.25 * texture)[..., None] * np.array([1.0, 0.92, 0.8])
        img[self.ground[:, 0]] = rock[self.ground[:, 0]]
        self.texture = texture
        return img

    def _boulders(self, rng: np.random.Generator) -> list[tuple[np.ndarray, float, np.ndarray, float, float]]:
        """(ellipse mask, top row, colour, height in rows, elevation in stage units) per boulder."""
        out = []
        for _ in range(int(rng.integers(4, 8))):
            row = int(self.horizon + (self.h - self.horizon) * rng.uniform(0.3, 0.95))
            cx = self.centre[min(row, self.h - 1), 0] + rng.uniform(-1, 1) * self.bed[min(row, self.h - 1), 0]
            rx = max(1.5, self.w * rng.uniform(0.03, 0.05) * self.near[min(row, self.h - 1), 0])
            ry = 0.7 * rx
            y = np.arange(self.h, dtype=np.float32)[:, None]
            mask = ((self.x - cx) / rx) ** 2 + ((y - row) / ry) ** 2 <= 1
            colour = np.array([0.5, 0.48, 0.45]) * rng.uniform(0.7, 1.1)
            out.append((mask, row - ry, colour.astype(np.float32), 2 * ry, rng.uniform(0.5, 1.2)))
        return out

    def _gauge(self, rng: np.random.Generator) -> tuple[np.ndarray, float, float, np.ndarray]:
        """A staff gauge standing in the channel: (mask, top row, bottom row, black marks)."""
        bottom = int(self.horizon + (self.h - self.horizon) * rng.uniform(0.65, 0.8))
        x0 = self.centre[bottom, 0] + 0.5 * self.bed[bottom, 0]
        half = max(0.6, self.w * 0.012 * self.near[bottom, 0])
        length = self.h * 0.3 * self.near[bottom, 0]
        y = np.arange(self.h, dtype=np.float32)[:, None]
        mask = (np.abs(self.x - x0) <= half) & (y <= bottom) & (y >= bottom - length)
        marks = mask & (((bottom - y) / max(length, 1) * 10) % 1 < 0.3)
        return mask, bottom - length, float(bottom), marks

    def photo(self, stage: float, when: Conditions, rng: np.random.Generator) -> Image.Image:
        """The camera's photo at `stage` (0 lowest .. 1 highest flow of the record)."""
        img = self.background.copy()
        season = 0.5 + 0.5 * np.cos(2 * np.pi * (when.day_of_year - 200) / 365)  # 1 in high summer
        leaf = np.array([0.25, 0.45, 0.18]) * season + np.array([0.5, 0.4, 0.22]) * (1 - season)
        shade = (0.7 + 0.5 * self.texture)[..., None]
        img[self.grass] = (leaf * shade)[self.grass]
        img[self.trees] = (leaf * 0.6 * shade)[self.trees]
        water = self.ground & (self.offset <= self.bed + self.gain * stage)
        self._fill_water(img, water, stage, rng)
        for mask, top, colour, height, elevation in self.boulders:
            dry = mask & (np.arange(self.h)[:, None] < top + height * np.clip(1 - stage / elevation, 0, 1))
            img[dry] = colour * (0.8 + 0.3 * self.texture[dry])[:, None]
        gauge, top, bottom, marks = self.gauge
        above = np.arange(self.h)[:, None] < bottom - (bottom - top) * stage
        img[gauge & above] = 0.92
        img[marks & above] = 0.08
        img = self._light(img, when, rng)
        return self._camera(img, rng)

    def _fill_water(self, img: np.ndarray, water: np.ndarray, stage: float, rng: np.random.Generator) -> None:
        mud = np.clip((stage - 0.35) / 0.5, 0, 1)
        colour = np.array([0.14, 0.3, 0.34]) * (1 - mud) + np.array([0.48, 0.4, 0.26]) * mud
        ripples = 0.05 * np.sin(self.x * 0.9 + rng.uniform(0, 6.3)) * rng.random((self.h, 1))
        tone = colour + (ripples + rng.normal(0, 0.02, (self.h, self.w)))[..., None]
        foam = rng.random((self.h, self.w)) < 0.01 + 0.3 * stage**2
        tone[foam] = 0.85
        img[water] = tone[water]

    def _light(self, img: np.ndarray, when: Conditions, rng: np.random.Generator) -> np.ndarray:
        sun = np.clip(np.sin(np.pi * (when.hour - 6) / 13), 0.15, 1)  # up 6:00 .. 19:00
        cloud = {"sun": 1.0, "cloud": 0.7, "rain": 0.55, "fog": 0.75}[when.weather] * rng.uniform(0.9, 1.1)
        warm = (1 - sun) * 0.2
        img = img * (0.35 + 0.65 * sun) * cloud * np.array([1 + warm, 1.0, 1 - warm], np.float32)
        if when.weather == "fog":
            haze = rng.uniform(0.25, 0.55)
            img = img * (1 - haze) + 0.7 * haze
        if when.weather == "rain":
            streaks = rng.random((self.h // 3 + 1, self.w)) < 0.02
            img += 0.25 * np.repeat(streaks, 3, axis=0)[: self.h, :, None]
        return img + rng.normal(0, 0.015, img.shape)

    def _camera(self, img: np.ndarray, rng: np.random.Generator) -> Image.Image:
        """Slight shake: a shift of up to 2% and a turn of up to one degree."""
        photo = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
        shift = (rng.uniform(-0.02, 0.02) * self.w, rng.uniform(-0.02, 0.02) * self.h)
        return photo.rotate(rng.uniform(-1, 1), Image.BILINEAR, translate=shift, fillcolor=(90, 90, 90))
