"""Writing files so that a reader never sees half of one.

Everything mlscale writes for others to read (records, tables, weights, data sets,
job scripts) goes through here: the content goes to a hidden temporary name beside
the target and is renamed over it only once complete; on any error the temporary
is removed and the target is left as it was. A directory of files (a run directory,
a sweep) is built the same way, whole (`atomic_dir`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
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


@contextmanager
def atomic_dir(path: str | os.PathLike, mode: int = 0o755) -> Iterator[Path]:
    """Yield a new hidden directory beside `path` to fill; on success it becomes `path` (which must
    not exist, or be an empty directory), with `mode`; on any error it is removed with its contents."""
    target = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(mode)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def staged_into(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new hidden directory beside `path` to fill; on success each of its entries is moved
    into `path` (created if needed), replacing an entry of the same name; on any error the hidden
    directory is removed and `path` is left as it was. For writers of several files into a folder
    that may already hold others (`mlscale data W --out DIR`)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging", dir=target.parent))
    try:
        yield tmp
        target.mkdir(exist_ok=True)
        for entry in sorted(tmp.iterdir()):
            dest = target / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(entry, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
