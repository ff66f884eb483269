"""Writing files so that a reader never sees half of one.

Everything mlscale writes for others to read (records, tables, weights, data sets,
job scripts) goes through here: the content goes to a hidden temporary name beside
the target and is renamed over it only once complete; on any error the temporary
is removed and the target is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: str | os.PathLike, suffix: str = "") -> Path:
    """A hidden name beside `path`, unique to this process."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}{suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write (with any library); on success it replaces `path`.

    `suffix` is for writers that insist on an extension (e.g. ".h5")."""
    target = Path(path)
    tmp = temporary_name(target, suffix)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to `path` atomically."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return Path(path)
