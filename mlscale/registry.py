"""Plug-in registration shared by launchers, backends, workloads and observers.

A class that sets `name` registers itself in its family's `registry` when it is
defined; modules in a plug-in folder are imported with `import_submodules`, so
no core file lists the plug-ins by hand (ReFrame's style).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import ClassVar


class Registered:
    """Mixin: subclasses with a non-empty `name` land in the family's `registry`.

    A family root declares its own `registry: ClassVar[dict] = {}`.
    """

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            cls.registry[cls.name] = cls


def import_submodules(package: ModuleType) -> None:
    """Import every module of a plug-in package (which registers its classes)."""
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
