"""Plug-in registration shared by launchers, backends, engines, workloads and observers.

A class that sets `name` registers itself in its family's `registry` when it is
defined; modules in a plug-in folder are imported with `import_submodules`, so
no core file lists the plug-ins by hand (ReFrame's style). A second class with a
name already taken is refused: one of them would silently win otherwise.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import ClassVar

from mlscale.errors import UserError


class DuplicateNameError(UserError):
    """Two plug-ins of one family claim the same name (one line, exit status 2, like any
    error the person adding a plug-in can fix)."""


class Registered:
    """Mixin: subclasses with a non-empty `name` land in the family's `registry`.

    A family root declares its own `registry: ClassVar[dict] = {}`.
    """

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.name:
            return
        taken = cls.registry.get(cls.name)
        if taken is not None and _where(taken) != _where(cls):  # the same class imported again is fine
            family = next(k.__name__ for k in cls.__mro__ if "registry" in vars(k))
            raise DuplicateNameError(
                f"{family} name {cls.name!r} is taken twice: by {_where(taken)} and by {_where(cls)}; rename one"
            )
        cls.registry[cls.name] = cls


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def import_submodules(package: ModuleType) -> None:
    """Import every module of a plug-in package (which registers its classes)."""
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
