"""Hidden folders and files that runs killed half-way leave under a results root.

A run collects its files in `.RUN_ID.staging` and writes its directory through a hidden temporary
(`.RUN_ID.tmpXXXX`, `mlscale.fileio`) renamed into place at the end; `mlscale data` stages in
`.DIR.stagingXXXX`. A process killed with SIGKILL (or a node that dies) leaves them behind. Nothing
reads them (the store skips hidden names), but they hold disk space and confuse users:
`mlscale runs` lists them and `mlscale runs --clean-staging` removes those older than a limit (a
live run's staging folder is young: it is touched as the run writes into it).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^\..+\.(staging|tmp)\w*$")


@dataclass(frozen=True)
class Leftover:
    path: Path
    age_h: float  # hours since anything inside it last changed
    size: int  # bytes


def _newest_and_size(path: Path) -> tuple[float, int]:
    if not path.is_dir() or path.is_symlink():
        st = path.lstat()
        return st.st_mtime, st.st_size
    newest, size = path.lstat().st_mtime, 0
    for folder, _, files in os.walk(path):
        newest = max(newest, os.lstat(folder).st_mtime)
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            newest, size = max(newest, st.st_mtime), size + st.st_size
    return newest, size


def find(root: str | os.PathLike) -> list[Leftover]:
    """Every staging or temporary folder (or file) below `root`, outside other hidden folders."""
    found, now = [], time.time()
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            if _NAME.match(name):
                path = Path(folder) / name
                try:
                    newest, size = _newest_and_size(path)
                except OSError:
                    continue  # removed meanwhile: its run finished
                found.append(Leftover(path, max(0.0, (now - newest) / 3600), size))
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # never look inside hidden folders
    return sorted(found, key=lambda leftover: leftover.path)


def clean(root: str | os.PathLike, older_than_h: float) -> list[Leftover]:
    """Remove the leftovers older than `older_than_h` hours; returns those removed."""
    removed = []
    for leftover in find(root):
        if leftover.age_h < older_than_h:
            continue
        if leftover.path.is_dir() and not leftover.path.is_symlink():
            shutil.rmtree(leftover.path, ignore_errors=True)
        else:
            leftover.path.unlink(missing_ok=True)
        removed.append(leftover)
    return removed
