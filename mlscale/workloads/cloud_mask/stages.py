"""Stage records: the seed's stages that are not training runs (convert to HDF, SST comparison)
leave a run directory like any run (`record.json`, `ranks.jsonl`, `run.log`), with mode "convert"
or "sst" and their figures under `stage`, so that `mlscale report` finds them and prints the
seed's stage table (`tables.py`). They carry no epochs, inference or iotest section, so the
training, inference and scaling tables skip them."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from mlscale.launch.comm import Communicator
from mlscale.launch.env import RankEnv

WORKLOAD = "cloud-mask"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_stage_record(out: str, mode: str, stage: dict, env: RankEnv, comm: Communicator, *, system: str, tag: str,
                       started_at: str, total_time: float, hosts: list[str], log: str = "") -> Path:  # fmt: skip
    """Rank 0: write the stage's run directory under `out` and index it; returns its path. Its
    ranks.jsonl stays empty (the per-rank table is about training steps); the stage's own
    per-product rows name their rank."""
    import logging

    from mlscale.bench import rundir
    from mlscale.results.record import SCHEMA_VERSION, write_run_dir
    from mlscale.versions import collect_versions, git_revision

    run_id = rundir.new_run_id(f"{WORKLOAD}-{mode}", system, comm.size, env)
    hosts = list(dict.fromkeys(hosts))
    record = {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "workload": WORKLOAD, "mode": mode, "status": "ok",
        "error": None, "system": system, "tag": tag, "started_at": started_at, "finished_at": now(),
        "launcher": env.launcher, "backend": comm.name, "device_type": "cpu", "num_ranks": comm.size,
        "num_nodes": len(hosts), "num_gpus": 0, "hosts": hosts, "job_id": env.job_id,
        "versions": collect_versions(), "git_revision": git_revision(), "total_time": total_time,
        "epoch_stats": [], "inference": None, "iotest": None, "phases": {}, "stage": stage,
    }  # fmt: skip
    path = write_run_dir(out, run_id, record, [], log)
    rundir.index(Path(out), path, logging.getLogger("mlscale"))
    return path
