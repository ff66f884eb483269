"""The methane-plume runtime table in the seed's form (seed 000, "CNN Pipeline Performance"):

    | CPU + GPU | GPUs | batch | Runtime (hrs) |

one row per inference run of the methane-plume workload (`mlscale plume predict --record DIR` or
`mlscale run methane-plume --mode inference`). GPUs is -1 for the CPU, else the device ids ("0123").
Beside the seed's columns: the method, the pixels the run covered, and the runtime extrapolated
to the seed's full 669 x 2801 flightline at the measured rate.

Declared as a seed table (`mlscale.results.seed_tables`): `mlscale report` shows it when there are
such runs, and `report --out DIR` writes it to plume_runtime.csv. Reads records only (no torch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from mlscale.results.seed_tables import SeedTable

SEED_FLIGHTLINE_PIXELS = 669 * 2801
COLUMNS = ["method", "CPU + GPU", "GPUs", "batch", "Runtime (hrs)", "pixels", "pixels/s", "full flightline (hrs)"]


def _gpu_short(name: str | None) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'H100', 'Tesla M60' -> 'M60'; no GPU -> 'none'."""
    if not name:
        return "none"
    match = re.search(r"\b([A-Z]{1,3}\d{2,4}[A-Za-z]*)\b", name)
    return match.group(1) if match else name


def plume_runtime_table(records: Iterable[dict]) -> pd.DataFrame:
    rows = []
    for r in records:
        inf = r.get("inference")
        if r.get("workload") != "methane-plume" or r.get("status", "ok") != "ok" or not inf:
            continue
        cuda = r.get("device_type") == "cuda"
        rate = inf.get("imgs_per_s")
        rows.append(
            {
                "method": inf.get("method"),
                "CPU + GPU": f"{inf.get('cpu_cores', '?')} + {_gpu_short(inf.get('gpu_name') if cuda else None)}",
                "GPUs": "".join(str(i) for i in range(r.get("num_gpus") or 0)) if cuda else "-1",
                "batch": r.get("batch_size"),
                "Runtime (hrs)": inf["total_time"] / 3600,
                "pixels": inf.get("samples"),
                "pixels/s": rate,
                "full flightline (hrs)": SEED_FLIGHTLINE_PIXELS / rate / 3600 if rate else None,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


class PlumeRuntime(SeedTable):
    name = "plume_runtime"
    title = "methane-plume runtime (seed 000 form)"
    workload = "methane-plume"

    @classmethod
    def build(cls, records: list[dict]) -> pd.DataFrame:
        return plume_runtime_table(records)
