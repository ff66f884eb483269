"""Seed tables: a workload's own tables in the form its seed publishes them.

A workload package declares them in its optional, torch-free `tables.py`:

    class Runtime(SeedTable):
        name = "my_runtime"                   # its CSV file under `report --out DIR`: my_runtime.csv
        title = "my-workload runtime (seed form)"   # its section heading in the report
        workload = "my-workload"              # build() gets this workload's successful records

        @classmethod
        def build(cls, records): return pandas.DataFrame(...)

`mlscale report` finds them here: nothing in mlscale.results names a workload.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import pandas as pd

from mlscale.registry import Registered


class SeedTable(Registered):
    registry: ClassVar[dict[str, type[SeedTable]]] = {}
    title: ClassVar[str] = ""
    workload: ClassVar[str] = ""

    @classmethod
    def build(cls, records: list[dict]) -> pd.DataFrame:
        raise NotImplementedError

    @classmethod
    def table(cls, records: Iterable[dict]) -> pd.DataFrame:
        """The table of this workload's successful runs among `records` (may be empty)."""
        return cls.build([r for r in records if r.get("workload") == cls.workload and r.get("status", "ok") == "ok"])


def seed_tables() -> list[type[SeedTable]]:
    """Every workload's seed tables, by name (imports each workload package's `tables.py`)."""
    from mlscale.workloads import import_all

    import_all("tables")
    return [SeedTable.registry[name] for name in sorted(SeedTable.registry)]
