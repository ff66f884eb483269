"""`mlscale matrix`: a speed-up matrix on this machine, one real `mlscale run` per combination.

    mlscale matrix --switches amp,channels-last,compile,cuda-graphs [--ranks 1,2] [--name NAME] \
        [--out DIR] -- run WORKLOAD [FLAGS]

Each combination of switches (by default: none, each alone, all together; `--combinations all`:
every subset) runs at each rank count, under `--launcher` (mpirun) when ranks > 1, with
`--tag matrix:NAME:COMBINATION@Rr`. A combination the run refuses (exit status 2 and one line, e.g.
`--cuda-graphs` on a CPU) is kept as a run record with status "skipped" and that line as its reason;
a crash leaves a "failed" record (the run's own, or one written here with its last error line).
`mlscale report DIR` draws the chart (throughput per
combination, one panel per NAME, speed-up over the plain 1-rank run) and its table
(mlscale.results.matrix). Names no workload.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from mlscale.cli import command
from mlscale.errors import UserError

SWITCHES = ("amp", "channels-last", "compile", "cuda-graphs")
TAG_PREFIX = "matrix:"

EPILOG = """examples:
  mlscale matrix --switches amp,channels-last,compile --name fcn-r18 --out runs/matrix \\
      -- run rareplanes --data tiles/ --model fcn --backbone resnet18 --epochs 2
  mlscale matrix --switches amp,channels-last,cuda-graphs --ranks 1,2 --name unet --out runs/matrix \\
      --launcher "mpirun -np {ranks} --bind-to none" -- run rareplanes --data tiles/ --model unet
  mlscale report runs/matrix"""


def configure(parser: argparse.ArgumentParser):
    parser.epilog = EPILOG
    parser.add_argument(
        "--switches", default="amp,channels-last", metavar="S,S,...",
        help=f"speed-up switches of mlscale run to combine, from: {', '.join(SWITCHES)} (default: amp,channels-last)",
    )  # fmt: skip
    parser.add_argument(
        "--combinations", choices=("each", "all"), default="each",
        help="each: none, each switch alone and all together (the seed's chart); all: every subset (default: each)",
    )  # fmt: skip
    parser.add_argument("--ranks", default="1", metavar="R,R,...", help="rank counts of every combination (default: 1)")
    parser.add_argument("--name", help="the chart panel of this matrix (default: the workload's name)")
    parser.add_argument("--out", default="runs", metavar="DIR", help="results root of the runs (default: runs)")
    parser.add_argument(
        "--launcher", default="mpirun -np {ranks}", metavar="CMD",
        help="command line that starts a run of more than one rank; {ranks} is the count (default: mpirun -np {ranks})",
    )  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="print the run commands; run nothing")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- run WORKLOAD [FLAGS]",
                        help="the mlscale run command every combination runs")  # fmt: skip
    return matrix


def combinations(switches: list[str], mode: str) -> list[tuple[str, ...]]:
    """The switch sets to run, the plain run first."""
    if mode == "all":
        return [c for k in range(len(switches) + 1) for c in itertools.combinations(switches, k)]
    combos = [(), *((s,) for s in switches)]
    return combos + ([tuple(switches)] if len(switches) > 1 else [])


def label(combo: tuple[str, ...], ranks: int) -> str:
    return f"{'+'.join(combo) or 'plain'}@{ranks}r"


def _parse_switches(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SWITCHES]
    if bad or not names:
        raise UserError(f"--switches {text}: choose from {', '.join(SWITCHES)}")
    return list(dict.fromkeys(names))


def _launcher(template: str, ranks: int) -> list[str]:
    if "{ranks}" not in template:
        raise UserError(f"--launcher {template!r}: must contain {{ranks}}")
    argv = shlex.split(template.replace("{ranks}", str(ranks)))
    found = shutil.which(argv[0], path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    return [found or argv[0], *argv[1:]]


def _env() -> dict:
    """The runs' environment: a free torch.distributed port unless one is set, so that runs of
    other users on a shared machine do not collide on the default port."""
    env = dict(os.environ)
    if "MASTER_PORT" not in env:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            env["MASTER_PORT"] = str(s.getsockname()[1])
    return env


def _record(run_argv: list[str], run_id: str, tag: str, combo, ranks: int, status: str, reason: str) -> dict:
    """The record of a combination that cannot apply or left none: enough for the chart to show why."""
    from mlscale.results.record import SCHEMA_VERSION

    system = next((run_argv[i + 1] for i, a in enumerate(run_argv[:-1]) if a == "--system"), "local")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    switches = {s.replace("-", "_"): s in combo for s in SWITCHES}
    return {"schema_version": SCHEMA_VERSION, "run_id": run_id, "workload": run_argv[1], "mode": "train",
            "status": status, "error": reason, "system": system, "tag": tag, "started_at": now,
            "finished_at": now, "num_ranks": ranks, "config": {"run": switches}, "epoch_stats": [],
            "inference": None, "iotest": None, "phases": {}}  # fmt: skip


def matrix(args: argparse.Namespace) -> int:
    from mlscale.launch.jobs.sweep import parse_int_list, safe_name, workload_of
    from mlscale.results.record import RECORD, write_run_dir

    run_argv = args.command[1:] if args.command[:1] == ["--"] else list(args.command)
    workload = workload_of(run_argv)
    for flag in ("--out", "--run-id", "--tag", "--amp", "--channels-last", "--compile", "--cuda-graphs"):
        if any(a == flag or a.startswith(flag + "=") for a in run_argv):
            raise UserError(f"-- ... {flag}: mlscale matrix sets {flag} for each combination; leave it out")
    switches = _parse_switches(args.switches)
    ranks = parse_int_list(args.ranks, "--ranks")
    name = args.name or workload
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    rows = []
    for r, combo in itertools.product(ranks, combinations(switches, args.combinations)):
        tag = f"{TAG_PREFIX}{name}:{label(combo, r)}"
        run_id = safe_name(f"{name}-{label(combo, r)}") + f"-{stamp}"
        argv = [*run_argv, *(f"--{s}" for s in combo), "--tag", tag, "--out", str(out), "--run-id", run_id]
        cmd = [*(_launcher(args.launcher, r) if r > 1 else []), sys.executable, "-m", "mlscale", *argv]
        if args.dry_run:
            print(shlex.join(cmd))
            continue
        print(f"{label(combo, r)}: running", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("mlscale: error:")]
        status, reason = "ok", ""
        if proc.returncode == 2 and lines:  # refused before it ran: the combination cannot apply
            status, reason = "skipped", lines[-1].removeprefix("mlscale: error: ")
            if not combo and r == ranks[0]:
                raise UserError(f"the plain run was refused, so is every combination: {reason}")
        elif proc.returncode:
            status = "failed"
            reason = (lines or proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1][-300:]
        if status != "ok" and not (out / run_id / RECORD).exists():  # the run left no record: keep why
            record = _record(run_argv, run_id, tag, combo, r, status, reason)
            write_run_dir(out, run_id, record, [], proc.stdout + proc.stderr)
        rows.append((label(combo, r), status, reason))
        print(f"{label(combo, r)}: {status}{': ' + reason if reason else ''}", flush=True)
    if not args.dry_run:
        print(f"{len(rows)} combination(s) of {name}: {sum(s == 'ok' for _, s, _ in rows)} ran, "
              f"{sum(s == 'skipped' for _, s, _ in rows)} skipped, {sum(s == 'failed' for _, s, _ in rows)} failed; "
              f"see: mlscale report {out}")  # fmt: skip
    return 1 if any(s == "failed" for _, s, _ in rows) else 0


command("matrix", help="speed-up matrix: one run per combination of switches and rank counts", order=42)(configure)
