"""`mlscale data cloud-mask`: synthetic .SEN3 products and their SST match-up table.

OUT/products/S3A_SL_1_RBT____..._004.SEN3/   one folder per product (see `sen3`)
OUT/sst_matchups.h5                          the match-up table (pandas HDF, see `matchups`)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlscale.errors import UserError
from mlscale.workloads.cloud_mask.config import CloudMaskData
from mlscale.workloads.cloud_mask.matchups import make_matchups, write_matchups
from mlscale.workloads.cloud_mask.sen3 import Grids, product_folder_name, start_time, write_product
from mlscale.workloads.cloud_mask.synth import bayes_values, make_scene, tie_point_angles

MIN_ROWS = 16  # the U-Net's three poolings and the tie-point spline need a few pixels


def check(config: CloudMaskData) -> None:
    if config.products < 1:
        raise UserError(f"--products must be at least 1, got {config.products}")
    if min(config.rows, config.columns) < MIN_ROWS:
        raise UserError(f"--rows and --columns must be at least {MIN_ROWS}, got {config.rows}x{config.columns}")
    if not 0 <= config.night_fraction <= 1:
        raise UserError(f"--night-fraction must be within [0, 1], got {config.night_fraction}")
    if config.buoys < 0:
        raise UserError(f"--buoys must be at least 0, got {config.buoys}")


def write_data(config: CloudMaskData, out: Path) -> str:
    check(config)
    out = Path(out)
    (out / "products").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    grids = Grids(config.rows, config.columns)
    nights = set(rng.choice(config.products, round(config.products * config.night_fraction), replace=False).tolist())
    tables, cloudy = [], []
    for i in range(config.products):
        day = i not in nights
        fields = make_scene(rng, config.rows, config.columns, day)
        angles = tie_point_angles(rng, grids.tn_shape, day)
        folder = out / "products" / product_folder_name(i, start_time(i))
        write_product(folder, fields, angles, grids, rng)
        name = folder.name.removesuffix(".SEN3")
        tables.append(make_matchups(rng, name, fields, bayes_values(fields), config.buoys))
        cloudy.append(fields.cloud.mean())
    table = pd.concat(tables, ignore_index=True)
    write_matchups(out / "sst_matchups.h5", table)
    return (
        f"wrote {config.products} products ({config.products - len(nights)} day, {len(nights)} night) of "
        f"{config.rows}x{config.columns} (in grid) to {out / 'products'}, mean cloud cover {np.mean(cloudy):.2f}; "
        f"{len(table)} SST match-ups to {out / 'sst_matchups.h5'}"
    )
