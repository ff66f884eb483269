"""The run record (record.json) and each rank's line of ranks.jsonl, built from a run's results.

The schema is `mlscale.results.record`'s; this module only fills it in.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from mlscale.bench.config import RunConfig
from mlscale.bench.rundir import remove_tree, staging_dir
from mlscale.bench.stats import phases_across_ranks
from mlscale.bench.workload import Context, Workload
from mlscale.launch.comm import Communicator
from mlscale.launch.env import RankEnv
from mlscale.results.record import SCHEMA_VERSION, write_run_dir
from mlscale.versions import collect_versions, git_revision


def record_header(
    run: RunConfig, workload: str, env: RankEnv, comm: Communicator, run_id: str, started_at: str, status: str, error
) -> dict:
    """The fields every record starts with, whether the run succeeded or not."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "workload": workload,
        "mode": run.mode,
        "status": status,
        "error": error,
        "system": run.system,
        "tag": run.tag,
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "launcher": env.launcher,
        "backend": comm.name,
    }


def build_record(workload: Workload, ctx: Context, lr: float, run_id: str, started_at: str, result: dict,
                 summaries: list[dict]) -> dict:  # fmt: skip
    run, env, comm, batch = ctx.run, ctx.env, ctx.comm, ctx.batch
    epochs = result["epoch_stats"]
    last = epochs[-1] if epochs else {}
    hosts = list(dict.fromkeys(s["host"] for s in summaries))
    num_gpus = sum(1 for s in summaries if s["device"].startswith("cuda"))
    phases = phases_across_ranks(summaries, "train")
    eval_phases = phases_across_ranks(summaries, "eval")
    for s in summaries:
        s.pop("steps")  # raw step times stay out of the files; their statistics are kept
    inference, iotest = result["inference"], result["iotest"]
    return {
        **record_header(run, workload.name, env, comm, run_id, started_at, "ok", None),
        "device_type": str(getattr(ctx.device, "type", ctx.device)),
        "num_ranks": comm.size,
        "num_nodes": len(hosts),
        "num_gpus": num_gpus,
        "hosts": hosts,
        "job_id": env.job_id,
        "versions": collect_versions(),
        "git_revision": git_revision(),
        "config": {"run": asdict(run), "workload": asdict(workload.config)},
        "batch_size": batch.per_rank,
        "global_batch_size": batch.global_size,
        "epochs": run.epochs if run.mode == "train" else 0,
        "learning_rate": lr,
        "accuracy_metric": workload.accuracy_metric,
        "accuracy_caption": workload.accuracy_caption,
        "setup_time": max(s["setup_time"] for s in summaries),
        "total_time": max(s["bench_time"] for s in summaries),
        "epoch_stats": epochs,
        "train_loss": last.get("train_loss"),
        "test_loss": last.get("test_loss"),
        "train_accuracy": last.get("train_accuracy"),
        "test_accuracy": last.get("test_accuracy"),
        "throughput": {
            "train_imgs_per_s": last.get("train_imgs_per_s"),
            "inference_imgs_per_s": (inference or {}).get("imgs_per_s"),
        },
        "inference": {k: v for k, v in inference.items() if k != "local"} if inference else None,
        "iotest": {k: v for k, v in iotest.items() if k != "local"} if iotest else None,
        "phases": phases,
        "eval_phases": eval_phases,
        "workload_info": result["info"],
    }


def write_failed(run: RunConfig, workload: str, env: RankEnv, comm: Communicator, run_id: str, started_at: str,
                 error: str, lines: list[str]) -> None:  # fmt: skip
    """A failed run still leaves a complete (small) record, so sweeps can show the failure."""
    record = {
        **record_header(run, workload, env, comm, run_id, started_at, "failed", error),
        "num_ranks": comm.size,
        "num_nodes": env.num_nodes,
        "hosts": [env.hostname],
        "config": {"run": asdict(run)},
        "epoch_stats": [],
        "inference": None,
        "iotest": None,
        "phases": {},
    }
    try:
        write_run_dir(run.out, run_id, record, [], "\n".join(lines) + "\n")
        remove_tree(staging_dir(Path(run.out), run_id))
    except Exception:  # never mask the original failure
        pass
