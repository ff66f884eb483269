"""Checks of a run's flags that need no rank, device or data, made before any work starts.

`mlscale run` calls `check_run` on every rank before the communicator starts, so a typo fails
every rank alike with one line and exit status 2: no rank is left waiting in a collective for
a peer that has already given up, and nothing is written. The same checks serve other commands
that write (`mlscale data --out`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mlscale.errors import UserError

# Characters a run directory's name may not hold: separators would write outside --out, and
# control characters make names no shell or table prints back faithfully.
_FORBIDDEN = set("/\\\0") | {chr(c) for c in range(32)} | {"\x7f"}


def check_run_id(run_id: str | None) -> None:
    """--run-id must be a plain directory name: it becomes OUT/RUN_ID, and nothing else."""
    if run_id is None:
        return
    if not run_id.strip():
        raise UserError("--run-id: empty; give a plain directory name")
    bad = sorted(ch for ch in set(run_id) if ch in _FORBIDDEN)
    if bad:
        raise UserError(f"--run-id {run_id!r}: contains {', '.join(map(repr, bad))}; give a plain directory name")
    if run_id.startswith("."):  # '.', '..' and hidden names (the store takes those for half-written runs)
        raise UserError(f"--run-id {run_id!r}: may not start with '.'; give a plain directory name")


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_output_dir(out: str | os.PathLike, flag: str = "--out") -> None:
    """A directory to create files in: it, or the nearest folder above it that exists, must be a
    writable directory."""
    path = Path(out)
    if not str(out):
        raise UserError(f"{flag}: empty; give a directory")
    existing = _nearest_existing(path.absolute())
    if not existing.is_dir():
        where = "is a file" if existing == path.absolute() else f"lies below {existing}, which is a file"
        raise UserError(f"{flag} {out}: {where}, not a directory")
    problem = _cannot_create_in(existing)
    if problem:
        raise UserError(f"{flag} {out}: cannot create files in {existing} ({problem})")


def _cannot_create_in(folder: Path) -> str | None:
    """Why nothing can be created in `folder`, or None. Tried, not inferred from permission bits:
    root passes every os.access test, and read-only or special file systems (/proc) refuse anyway."""
    try:
        with tempfile.TemporaryDirectory(prefix=".mlscale-probe", dir=folder):
            pass
    except OSError as err:
        return err.strerror or type(err).__name__
    return None


def check_destination(path: str | os.PathLike, flag: str) -> None:
    """A file to write later (e.g. --save-weights): its folder must exist and be writable, and the
    path must not be a directory, so that hours of training are not lost at the last step."""
    target = Path(path)
    if not str(path):
        return
    if target.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give a file name")
    parent = target.absolute().parent
    if not parent.is_dir():
        raise UserError(f"{path}: {flag} directory {parent} does not exist")
    problem = _cannot_create_in(parent)
    if problem:
        raise UserError(f"{path}: {flag} directory {parent} is not writable ({problem})")


def check_source(path: str | os.PathLike, flag: str) -> None:
    """A file to read (e.g. --weights): it must exist and be a readable file."""
    if not str(path):
        return
    source = Path(path)
    if not source.exists():
        raise UserError(f"{path}: {flag} file not found")  # the engines' own words for it
    if not source.is_file():
        raise UserError(f"{path}: {flag} is not a file")


def check_run(run) -> None:  # run: mlscale.bench.config.RunConfig
    """Every check of `mlscale run`'s own flags; the same verdict on every rank of a shared file system."""
    check_run_id(run.run_id)
    check_output_dir(run.out)
    if run.run_id and not run.resume and (Path(run.out) / run.run_id).exists():  # --resume: bench.resume
        raise UserError(f"{Path(run.out) / run.run_id}: run directory already exists; choose another --run-id")
    check_destination(run.save_weights, "--save-weights")
    check_source(run.weights, "--weights")
