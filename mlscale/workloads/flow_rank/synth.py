"""`mlscale data flow-rank`: a synthetic Flow Photo Explorer station in the original's model-input layout.

- a flow record (cfs): a seasonal base flow (high in spring, low in late summer) plus storms that
  rise within hours and recede over days, read at each photo's time;
- photos (`scene.Station`) whose channel fills with the stage the flow sets;
- annotations as the Explorer collects them: during an annotation period (the first part of the
  record, so `test-out` lies after it) people compare pairs of photos within sessions and answer
  left higher / same / right higher (1 / 0 / -1), erring sometimes when the flows are close;
- the split of r/rank-input.R: connected components of the pair graph, in random order, go to
  train while the cumulative share of their images stays within the train fraction, the rest to
  val; photos of the annotation period in no pair are `test-in`, later ones `test-out`;
- every pair also with its sides swapped and its label negated, rows ordered by pair.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from mlscale.errors import UserError
from mlscale.fileio import atomic_path, atomic_write
from mlscale.workloads.flow_rank.config import IMAGE_COLUMNS, IMAGES_DIR, IMAGES_FILE, PAIRS_FILE, FlowRankData
from mlscale.workloads.flow_rank.scene import WEATHER, WEATHER_ODDS, Conditions, Station

START = pd.Timestamp("2021-03-01")  # local time; written as UTC with the station's offset
UTC_OFFSET_H = 5  # an eastern-US station in standard time


def flow_record(days: np.ndarray, span: float, rng: np.random.Generator) -> np.ndarray:
    """Flow in cfs at `days` (fractional days since START)."""
    doy = START.dayofyear + days
    base = 3.0 * np.exp(0.9 * np.cos(2 * np.pi * (doy - 100) / 365))
    flow = base.copy()
    for _ in range(rng.poisson(span / 6) + 1):
        t0 = rng.uniform(-10, span)
        peak = 3.0 * rng.lognormal(0.3, 0.9)
        dt = days - t0
        rising = 1 - np.exp(-np.clip(dt, 0, None) / 0.15)
        flow += np.where(dt > 0, peak * rising * np.exp(-np.clip(dt, 0, None) / rng.uniform(1.0, 4.0)), 0)
    return np.round(flow, 3)


def stage_of(flow: np.ndarray) -> np.ndarray:
    """Stage in [0, 1], monotone in flow: the flow's quantile in the record, so that the photos'
    differences spread over the whole range rather than crowd at base flow."""
    return (np.argsort(np.argsort(flow, kind="stable"), kind="stable") + 0.5) / len(flow)


def _check(cfg: FlowRankData) -> None:
    problems = [
        ("--images", cfg.images >= 20, "at least 20"),
        ("--width/--height", min(cfg.width, cfg.height) >= 32, "at least 32 pixels"),
        ("--per-day", 1 <= cfg.per_day <= 12, "between 1 and 12"),
        ("--session-size", cfg.session_size >= 2, "at least 2"),
        ("--pairs-per-image", cfg.pairs_per_image >= 1, "at least 1"),
        ("--quality", 1 <= cfg.quality <= 100, "between 1 and 100"),
    ]
    for name in ("annotation_fraction", "annotated_fraction", "train_fraction"):
        value = getattr(cfg, name)
        problems.append((f"--{name.replace('_', '-')}", 0 < value < 1, "within (0, 1)"))
    for flag, ok, want in problems:
        if not ok:
            raise UserError(f"mlscale data flow-rank: {flag} must be {want}")


def photo_table(cfg: FlowRankData, rng: np.random.Generator) -> pd.DataFrame:
    """images.csv without its split: one row per photo, in time order."""
    n_days = math.ceil(cfg.images / cfg.per_day)
    hours = np.linspace(7.5, 17.5, cfg.per_day) if cfg.per_day > 1 else np.array([12.0])
    day = np.repeat(np.arange(n_days), cfg.per_day)[: cfg.images]
    hour = np.tile(hours, n_days)[: cfg.images] + rng.uniform(-0.25, 0.25, cfg.images)
    days = day + hour / 24
    local = START + pd.to_timedelta(np.round(days * 86400), unit="s")
    stamps = (local + pd.Timedelta(hours=UTC_OFFSET_H)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ids = 100001 + np.arange(cfg.images)
    names = [f"SYNTH_{t:%Y%m%d_%H%M%S}.jpg" for t in local]
    return pd.DataFrame({"image_id": ids, "timestamp": stamps, "filename": names, "url": "",
                         "value": flow_record(days, n_days, rng), "day": day, "hour": hour})  # fmt: skip


def _label(v1: float, v2: float, cfg: FlowRankData, rng: np.random.Generator) -> int:
    label = 0 if abs(v1 - v2) / ((v1 + v2) / 2) < cfg.same_tolerance else (1 if v1 > v2 else -1)
    if rng.random() < cfg.label_noise * math.exp(-abs(math.log(v1 / v2)) / 0.1):
        label = int(rng.choice([x for x in (-1, 0, 1) if x != label]))
    return label


def annotate(photos: pd.DataFrame, cfg: FlowRankData, rng: np.random.Generator) -> tuple[pd.DataFrame, int]:
    """Annotated pairs (one row each, `pair` numbered from 1) drawn within sessions of the annotation period,
    and the first day after that period."""
    period_end = math.ceil(cfg.annotation_fraction * (photos["day"].max() + 1))
    candidates = rng.permutation(np.flatnonzero(photos["day"].to_numpy() < period_end))
    shown = candidates[: max(2, round(cfg.annotated_fraction * len(candidates)))]
    rows = []
    for start in range(0, len(shown), cfg.session_size):
        session = shown[start : start + cfg.session_size]
        if len(session) < 2:
            continue
        links = {tuple(sorted((session[i], session[rng.integers(i)]))) for i in range(1, len(session))}  # connected
        target = min(round(cfg.pairs_per_image * len(session)), len(session) * (len(session) - 1) // 2)
        while len(links) < target:
            a, b = rng.choice(session, 2, replace=False)
            links.add((min(a, b), max(a, b)))
        for a, b in sorted(links):
            left, right = (a, b) if rng.random() < 0.5 else (b, a)
            rows.append((left, right))
    left, right = (np.array(side) for side in zip(*rows))
    values = photos["value"].to_numpy()
    labels = [_label(values[a], values[b], cfg, rng) for a, b in rows]
    pairs = pd.DataFrame({"pair": np.arange(1, len(rows) + 1), "left": left, "right": right, "label": labels})
    return pairs, period_end


def component_split(pairs: pd.DataFrame, n_images: int, train_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Per pair, "train" or "val": components of the pair graph by cumulative share of images (rank-input.R)."""
    graph = coo_matrix((np.ones(len(pairs)), (pairs["left"], pairs["right"])), shape=(n_images, n_images))
    _, member = connected_components(graph, directed=False)
    annotated = np.unique(np.concatenate([pairs["left"], pairs["right"]]))
    comps, sizes = np.unique(member[annotated], return_counts=True)
    order = rng.permutation(len(comps))
    share = np.cumsum(sizes[order]) / sizes.sum()
    train_comps = comps[order][share <= train_fraction]
    return np.where(np.isin(member[pairs["left"]], train_comps), "train", "val")


def pair_rows(photos: pd.DataFrame, pairs: pd.DataFrame, split: np.ndarray) -> pd.DataFrame:
    """pairs.csv: each pair, then the same pair with its sides swapped and its label negated."""
    cols = ["image_id", "timestamp", "filename", "value"]

    def side(index: pd.Series, n: int) -> pd.DataFrame:
        return photos.iloc[index.to_numpy()][cols].rename(columns=lambda c: f"{c}_{n}").reset_index(drop=True)

    ahead = pd.concat([side(pairs["left"], 1), side(pairs["right"], 2)], axis=1)
    swapped = pd.concat([side(pairs["right"], 1), side(pairs["left"], 2)], axis=1)
    ahead.insert(0, "pair", pairs["pair"].to_numpy())
    swapped.insert(0, "pair", pairs["pair"].to_numpy())
    ahead["label"], swapped["label"] = pairs["label"].to_numpy(), -pairs["label"].to_numpy()
    for frame in (ahead, swapped):
        frame.insert(0, "split", split)
    both = pd.concat([ahead, swapped], keys=[0, 1]).reset_index(level=0, names="side")
    return both.sort_values(["pair", "side"], kind="stable").drop(columns="side").reset_index(drop=True)


def write_station(cfg: FlowRankData, out: Path) -> str:
    _check(cfg)
    rng = np.random.default_rng(cfg.seed)
    photos = photo_table(cfg, rng)
    annotations, period_end = annotate(photos, cfg, rng)
    split = component_split(annotations, len(photos), cfg.train_fraction, rng)
    images_split = np.where(photos["day"] < period_end, "test-in", "test-out").astype(object)
    for name in ("val", "train"):  # an image is in the pairs of one split only (components)
        chosen = annotations.loc[split == name, ["left", "right"]].to_numpy().ravel()
        images_split[chosen] = name
    photos.insert(0, "split", images_split)

    folder = out / IMAGES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    station = Station(cfg.height, cfg.width, rng)
    stages = stage_of(photos["value"].to_numpy())
    weather = rng.choice(WEATHER, int(photos["day"].max()) + 1, p=WEATHER_ODDS)
    for i, row in enumerate(photos.itertuples()):
        when = Conditions(hour=row.hour, day_of_year=START.dayofyear + row.day, weather=weather[row.day])
        with atomic_path(folder / row.filename, suffix=".jpg") as tmp:
            station.photo(stages[i], when, rng).save(tmp, "JPEG", quality=cfg.quality)

    pairs = pair_rows(photos, annotations, split)
    atomic_write(out / PAIRS_FILE, pairs.to_csv(index=False))
    atomic_write(out / IMAGES_FILE, photos[list(IMAGE_COLUMNS)].to_csv(index=False))
    counts = photos["split"].value_counts()
    by_split = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("train", "val", "test-in", "test-out"))
    return (
        f"wrote {len(photos)} photos ({cfg.width}x{cfg.height}: {by_split}) to {folder}, "
        f"{len(pairs)} pair rows ({len(annotations)} annotated pairs and their swaps) to {out / PAIRS_FILE}, "
        f"and {out / IMAGES_FILE}"
    )
