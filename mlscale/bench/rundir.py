"""Run ids, the hidden staging directory a run writes into, and the results index."""

from __future__ import annotations

import logging
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

from mlscale.launch.env import RankEnv


def new_run_id(workload: str, system: str, size: int, env: RankEnv) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    job = f"-j{env.job_id}" if env.job_id else ""
    safe_system = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in system)
    return f"{workload}-{safe_system}-{size}r{job}-{stamp}-{secrets.token_hex(2)}"


def staging_dir(out_root: Path, run_id: str) -> Path:
    """Where rank 0 collects a run's extra files before the run directory is written whole."""
    return out_root / f".{run_id}.staging"


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def index(root: Path, run_dir: Path, log: logging.Logger) -> None:
    """Add the run to the results store when one is available (mlscale.results.store)."""
    try:
        from mlscale.results import store
    except ImportError:
        return
    try:
        store.index_run(root, run_dir)
    except Exception as exc:  # the run directory is the source of truth; the index can be rebuilt
        log.warning("could not index %s: %s", run_dir, exc)
