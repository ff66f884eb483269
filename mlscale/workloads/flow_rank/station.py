"""Reading a station's model input: images.csv, pairs.csv and the photos they name, checked up front.

Every problem is one line naming the file and the row (counted from 1 after the header) or the
column: a missing or unreadable file, a missing column, a split or label outside the layout, an
image id that images.csv lacks, a photo file that is not there. Photos are decoded later (in the
DataLoader workers); a corrupt one is reported then, with the row that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlscale.errors import UserError
from mlscale.workloads.flow_rank.config import (
    IMAGE_COLUMNS,
    IMAGE_SPLITS,
    IMAGES_DIR,
    IMAGES_FILE,
    PAIR_COLUMNS,
    PAIR_SPLITS,
    PAIRS_FILE,
)


def where(path: Path, index: int) -> str:
    """'FILE row N': N counts data rows from 1 (row 1 is the line after the header)."""
    return f"{path} row {index + 1}"


def read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        table = pd.read_csv(path, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a readable CSV file ({str(err).splitlines()[0]})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        has = ", ".join(map(str, table.columns))
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (it has: {has})")
    return table


def _integer_ids(table: pd.DataFrame, column: str, path: Path) -> None:
    ids = pd.to_numeric(table[column], errors="coerce")
    bad = np.flatnonzero(ids.isna().to_numpy() | (ids.to_numpy() % 1 != 0))
    if len(bad):
        raise UserError(f"{where(path, bad[0])}: {column} {table[column].iloc[bad[0]]} is not an integer id")
    table[column] = ids.astype(np.int64)


def _splits(table: pd.DataFrame, allowed: tuple[str, ...], path: Path) -> None:
    bad = np.flatnonzero(~table["split"].isin(allowed).to_numpy())
    if len(bad):
        value = table["split"].iloc[bad[0]]
        raise UserError(f"{where(path, bad[0])}: split {value!r} is not one of {', '.join(allowed)}")


def _files(table: pd.DataFrame, column: str, root: Path, path: Path) -> None:
    names = table[column]
    blank = np.flatnonzero(names.isna().to_numpy())
    if len(blank):
        raise UserError(f"{where(path, blank[0])}: no {column}")
    exists = {name: (root / name).is_file() for name in names.unique()}
    missing = np.flatnonzero(~names.map(exists).to_numpy(bool))
    if len(missing):
        name = names.iloc[missing[0]]
        raise UserError(f"{where(path, missing[0])}: image file {root / name} ({column}) not found")


@dataclass
class StationData:
    """A station's images and (when read) pairs, checked; `images_dir` is what filenames are relative to."""

    images: pd.DataFrame
    pairs: pd.DataFrame | None
    images_dir: Path
    images_csv: Path
    pairs_csv: Path

    def pairs_of(self, split: str) -> pd.DataFrame:
        assert self.pairs is not None
        return self.pairs[self.pairs["split"] == split]


def read_images(path: Path, images_dir: Path) -> pd.DataFrame:
    images = read_table(path, IMAGE_COLUMNS)
    _splits(images, IMAGE_SPLITS, path)
    _integer_ids(images, "image_id", path)
    dup = np.flatnonzero(images["image_id"].duplicated().to_numpy())
    if len(dup):
        raise UserError(f"{where(path, dup[0])}: image_id {images['image_id'].iloc[dup[0]]} appears twice")
    images["value"] = pd.to_numeric(images["value"], errors="coerce")  # no observation: NaN, not scored
    _files(images, "filename", images_dir, path)
    return images


def read_pairs(path: Path, images_dir: Path, image_ids: set[int]) -> pd.DataFrame:
    pairs = read_table(path, PAIR_COLUMNS)
    _splits(pairs, PAIR_SPLITS, path)
    labels = pd.to_numeric(pairs["label"], errors="coerce")
    bad = np.flatnonzero(~labels.isin((-1, 0, 1)).to_numpy())
    if len(bad):
        raise UserError(f"{where(path, bad[0])}: label {pairs['label'].iloc[bad[0]]} is not -1, 0 or 1")
    pairs["label"] = labels.astype(np.int64)
    for n in (1, 2):
        column = f"image_id_{n}"
        _integer_ids(pairs, column, path)
        unknown = np.flatnonzero(~pairs[column].isin(image_ids).to_numpy())
        if len(unknown):
            value = pairs[column].iloc[unknown[0]]
            raise UserError(f"{where(path, unknown[0])}: {column} {value} is not in {IMAGES_FILE}")
        _files(pairs, f"filename_{n}", images_dir, path)
    return pairs


def read_station(data: str, images: str = "", with_pairs: bool = True) -> StationData:
    """images.csv (and pairs.csv) under `data`; photos under `images` (default DATA/images)."""
    if not data:
        raise UserError("flow-rank needs --data DIR (write a station with `mlscale data flow-rank --out DIR`)")
    root = Path(data)
    if not root.is_dir():
        raise UserError(f"{root}: --data is not a directory")
    images_dir = Path(images) if images else root / IMAGES_DIR
    if not images_dir.is_dir():
        raise UserError(f"{images_dir}: images folder not found (--images)")
    images_csv, pairs_csv = root / IMAGES_FILE, root / PAIRS_FILE
    table = read_images(images_csv, images_dir)
    pairs = read_pairs(pairs_csv, images_dir, set(table["image_id"])) if with_pairs else None
    if pairs is not None and not (pairs["split"] == "train").any():
        raise UserError(f"{pairs_csv}: no train pairs")
    return StationData(table, pairs, images_dir, images_csv, pairs_csv)
