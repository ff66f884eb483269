"""The sweep manifest (`SWEEP_DIR/sweep.json`) and what became of each point.

A sweep directory holds:

    sweep.json      this manifest: system, command, points, scripts and their job ids
    scripts/*.sh    one job script per point (or one job array per node count)
    logs/           the scheduler's stdout/stderr of each job
    runs/<run_id>/  the run directory `mlscale run` writes for each point

`sweep_status(sweep_dir)` says, per point, whether its run finished ("ok"),
"failed", is still "queued" or "running", or was "not submitted"; the report
command prints it next to the tables. This module reads files and asks the
scheduler's queue command; it never imports torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlscale.errors import UserError
from mlscale.launch.jobs.render import Script
from mlscale.launch.jobs.schedulers import ENDED, QUEUED, RUNNING, QueryError, Scheduler
from mlscale.launch.jobs.sweep import RUNS_DIR, Point
from mlscale.launch.jobs.system import System
from mlscale.results.record import RECORD, atomic_write_text

MANIFEST = "sweep.json"
FORMAT = 1

OK, FAILED, NOT_SUBMITTED, UNKNOWN = "ok", "failed", "not submitted", "unknown"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_manifest(system: System, run_argv: list[str], scaling: str, repeats: int, scripts: list[Script]) -> dict:
    by_point = {p.id: (s, i) for s in scripts for i, p in enumerate(s.points)}
    points = [p for s in scripts for p in s.points]
    return {
        "mlscale_sweep": FORMAT,
        "created_at": now(),
        "system": {
            "name": system.name,
            "label": system.label,
            "source": system.source,
            "scheduler": system.scheduler,
            "launcher": system.launcher,
        },
        "scaling": scaling,
        "repeats": repeats,
        "command": list(run_argv),
        "runs_dir": RUNS_DIR,
        "scripts": [
            {
                "path": s.path,
                "array": s.array,
                "points": [p.id for p in s.points],
                "job_id": None,
                "submitted_at": None,
                "exit_code": None,
            }
            for s in scripts
        ],
        "points": [
            {
                **_point_fields(p),
                "script": by_point[p.id][0].path,
                "array_index": by_point[p.id][1] if by_point[p.id][0].array else None,
            }
            for p in points
        ],
    }


def _point_fields(p: Point) -> dict:
    fields = asdict(p)
    fields["run_id"] = p.run_id
    return fields


def is_sweep_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST).is_file()


def write_manifest(sweep_dir: str | os.PathLike, manifest: dict) -> None:
    atomic_write_text(Path(sweep_dir) / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def load_manifest(sweep_dir: str | os.PathLike) -> dict:
    path = Path(sweep_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{sweep_dir}: not a sweep directory (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(manifest, dict) or manifest.get("mlscale_sweep") != FORMAT:
        raise UserError(f"{path}: not an mlscale sweep manifest (format {FORMAT})")
    return manifest


def submit_sweep(sweep_dir: str | os.PathLike, manifest: dict, log=print) -> dict:
    """Submit every script not yet submitted, recording each job id in the manifest
    as soon as it is known (so an interrupted submission loses nothing)."""
    sweep_dir = Path(sweep_dir)
    scheduler = Scheduler.registry[manifest["system"]["scheduler"]]()
    for entry in manifest["scripts"]:
        if entry["job_id"]:
            continue
        script = sweep_dir / entry["path"]
        sub = scheduler.submit(script, cwd=sweep_dir, log=sweep_dir / "logs" / f"{script.stem}.out")
        entry.update(job_id=sub.job_id, submitted_at=now(), exit_code=sub.exit_code)
        write_manifest(sweep_dir, manifest)
        status = f" (exit status {sub.exit_code})" if sub.exit_code is not None else ""
        log(f"{entry['path']}: job {sub.job_id}{status}")
    return manifest


@dataclass
class PointStatus:
    point: str
    nodes: int
    ranks: int
    repeat: int
    state: str  # ok | failed | queued | running | not submitted | unknown
    job_id: str | None
    detail: str
    run_dir: str | None


LAUNCHER_NOISE = ("srun:", "slurmstepd:", "aprun:", "mpiexec", "mpirun", "prterun", "prte", "Application ", "--")


def _reason(paths: list[Path]) -> str:
    """Why a job failed, from its log: the last error line that is not the launcher's own
    summary ("srun: error: task 0: Exited with exit code 2"), else the last line."""
    for path in paths:
        try:
            lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            continue
        if not lines:
            continue
        errors = [
            ln
            for ln in lines
            if ("error" in ln.lower() or "exception" in ln.lower()) and not ln.startswith(LAUNCHER_NOISE)
        ]
        return f"{path.name}: {(errors or lines)[-1][:200]}"
    return ""


def _logs(sweep_dir: Path, script: str, index: int | None) -> list[Path]:
    stem = Path(script).stem
    found = sorted((sweep_dir / "logs").glob(f"{stem}*"), key=lambda p: p.stat().st_mtime, reverse=True)
    if index is not None:  # an array task's log: NAME.JOBID_INDEX.out
        found = [p for p in found if f"_{index}." in p.name] or found
    return found


def sweep_status(sweep_dir: str | os.PathLike, query: bool = True) -> list[PointStatus]:
    """What became of each point of the sweep in `sweep_dir`.

    A point with a run record is "ok" or "failed" as the record says. Without one,
    its job is asked for in the scheduler's queue (`query=False` skips that):
    "queued" or "running" while it is there, "failed" once it has left without
    writing a record (with the last line of its log), "unknown" when the queue
    cannot be asked, and "not submitted" when it has no job id.
    """
    sweep_dir = Path(sweep_dir)
    manifest = load_manifest(sweep_dir)
    runs = sweep_dir / manifest.get("runs_dir", RUNS_DIR)
    scripts = {s["path"]: s for s in manifest["scripts"]}
    scheduler = Scheduler.registry[manifest["system"]["scheduler"]]()

    pending = [p for p in manifest["points"] if not (runs / p["run_id"] / RECORD).is_file()]
    job_ids = sorted({scripts[p["script"]]["job_id"] for p in pending if scripts[p["script"]]["job_id"]})
    states: dict[str, str] = {}
    query_error = None
    if job_ids and query and scheduler.submit_command:
        try:
            states = scheduler.states(job_ids)
        except QueryError as err:
            query_error = str(err)

    out = []
    for p in manifest["points"]:
        script = scripts[p["script"]]
        job_id = script["job_id"]
        run_dir = runs / p["run_id"]
        record_path = run_dir / RECORD
        base = dict(point=p["id"], nodes=p["nodes"], ranks=p["ranks"], repeat=p["repeat"], job_id=job_id)
        if record_path.is_file():
            try:
                record = json.loads(record_path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                out.append(
                    PointStatus(**base, state=FAILED, detail=f"{record_path}: unreadable ({err})", run_dir=str(run_dir))
                )
                continue
            state = OK if record.get("status", OK) == OK else FAILED
            detail = "" if state == OK else str(record.get("error") or "run recorded status failed")
            out.append(PointStatus(**base, state=state, detail=detail, run_dir=str(run_dir)))
            continue
        if not job_id:
            out.append(PointStatus(**base, state=NOT_SUBMITTED, detail=f"submit {script['path']}", run_dir=None))
            continue
        logs = _logs(sweep_dir, script["path"], p["array_index"])
        if script.get("exit_code") is not None:  # ran in the foreground: it is over
            detail = f"exit status {script['exit_code']}, no run record; {_reason(logs)}".rstrip("; ")
            out.append(PointStatus(**base, state=FAILED, detail=detail, run_dir=None))
            continue
        if query_error or not query:
            why = query_error or "queue not asked"
            out.append(PointStatus(**base, state=UNKNOWN, detail=f"no run record yet; {why}", run_dir=None))
            continue
        state = states.get(scheduler.task_id(job_id, p["array_index"]), ENDED)
        if state in (QUEUED, RUNNING):
            out.append(PointStatus(**base, state=state, detail="", run_dir=None))
        else:
            detail = f"job left the queue without a run record; {_reason(logs) or 'no log file'}"
            out.append(PointStatus(**base, state=FAILED, detail=detail, run_dir=None))
    return out


def format_sweep_status(statuses: list[PointStatus], fmt: str = "markdown") -> str:
    """The status list as a Markdown (or CSV) table, with a one-line summary."""
    import pandas as pd

    frame = pd.DataFrame([asdict(s) for s in statuses], columns=list(PointStatus.__dataclass_fields__))
    frame = frame.drop(columns=["run_dir"])
    if fmt == "csv":
        return frame.to_csv(index=False)
    counts = frame["state"].value_counts()
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    return f"Sweep points: {summary}\n\n" + frame.to_markdown(index=False)


def without_empty_sweeps(paths: list[str]) -> list[str]:
    """The report's paths minus sweep directories that hold no run record yet (all queued,
    say): those still get their status table, but would make record loading fail."""
    return [p for p in paths if not is_sweep_dir(p) or any((Path(p) / RUNS_DIR).rglob(RECORD))]


def sweep_status_report(paths: list[str], fmt: str = "markdown", query: bool = True) -> str:
    """A "## Sweep status" section for each sweep directory among `paths` ("" if none):
    which points are ok, failed (and why), queued, running or not submitted."""
    text = ""
    for path in paths:
        if is_sweep_dir(path):
            manifest = load_manifest(path)
            what = f"{manifest['system']['name']}, {manifest['scaling']} scaling, {' '.join(manifest['command'][:2])}"
            text += f"## Sweep status: {path} ({what})\n\n{format_sweep_status(sweep_status(path, query), fmt)}\n\n"
    return text
