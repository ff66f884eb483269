"""The workloads: one package per workload, found by name (`mlscale run NAME`).

A package `mlscale/workloads/<name>/` holds everything only that workload uses, in
modules with fixed names that the rest of mlscale looks for:

- `config.py`   its `Config` (flags of `mlscale run NAME`) and `DataConfig` (flags of
                `mlscale data NAME`); dataclasses, no framework import;
- `workload.py` the `Workload` subclass, registered by its `name`;
- `tables.py`   optional: its seed's tables for `mlscale report` (no framework import);
- `cli.py`      optional: its seed's own command line (`@command`, like `mlscale.commands`).

Nothing outside the package names it: the CLI, `mlscale data`, the report and the docs
index find it here. `docs/contributing.md` walks through adding one.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from types import ModuleType


def packages() -> list[str]:
    """Names of the workload packages (folder names, e.g. "cosmic_tagger")."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if info.ispkg)


def import_all(module: str) -> list[ModuleType]:
    """Import `mlscale.workloads.<package>.<module>` from every package that has one."""
    found = []
    for package in packages():
        name = f"{__name__}.{package}.{module}"
        if importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name))
    return found
