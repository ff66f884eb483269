"""`mlscale launch`: job scripts for a scaling sweep, written, printed or submitted."""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

from mlscale.cli import command
from mlscale.errors import UserError
from mlscale.fileio import atomic_dir

DESCRIPTION = """\
Write the job scripts of a scaling sweep for a system's scheduler (SLURM, PBS,
Cobalt, or none) and rank launcher (srun, mpiexec, aprun, PALS mpiexec, mpirun),
one script per point (or one job array per node count), plus a manifest
(SWEEP_DIR/sweep.json) that `mlscale report SWEEP_DIR` reads to show every
point's records and which points failed or are still queued.

Everything after `--` is the `mlscale run` command each point runs; launch adds
--out/--run-id per point (records land in SWEEP_DIR/runs/) and, unless given,
--system with the system's label.

examples:
  mlscale launch --system theta-like --nodes 1,2,4 --dry-run -- run cosmic-tagger --epochs 2
  mlscale launch --system pearl-like --ranks 1,2,4,8,16 --out sweeps/pearl --submit -- run cloud-mask --epochs 2
  mlscale launch --system my-cluster.yaml --nodes 1,2,4,8 --scaling strong --repeats 3 --array --submit \\
      -- run synthetic --global-batch-size 1024
  mlscale report sweeps/pearl
"""


def configure(parser: argparse.ArgumentParser):
    parser.add_argument(
        "--system",
        required=True,
        metavar="NAME|PATH",
        help="a shipped system (generic-slurm-gpu, pearl-like, scarf-like, theta-like, cooley-like, "
        "polaris-like, local) or the path of your own YAML description",
    )
    parser.add_argument("--nodes", metavar="N,N,...", help="node counts of the sweep, e.g. 1,2,4,8")
    parser.add_argument(
        "--ranks",
        metavar="R,R,...",
        help="rank counts of the sweep (with --nodes: ranks per point spread over each node count)",
    )
    parser.add_argument(
        "--ranks-per-node", type=int, metavar="N", help="ranks on each node (default: the system's, or one per GPU)"
    )
    parser.add_argument(
        "--scaling",
        choices=("weak", "strong"),
        default="weak",
        help="weak: per-rank --batch-size fixed; strong: global batch fixed (default: weak)",
    )
    parser.add_argument("--repeats", type=int, default=1, metavar="K", help="runs of each point (default: 1)")
    parser.add_argument(
        "--array", action="store_true", help="one job array per node count instead of one job per point (SLURM, PBS)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the scripts; write and submit nothing")
    mode.add_argument(
        "--submit",
        action="store_true",
        help="submit the scripts (sbatch/qsub; with scheduler none: run them here, one by one)",
    )
    parser.add_argument(
        "--out", metavar="SWEEP_DIR", help="sweep directory to create (default: sweeps/SYSTEM-WORKLOAD-TIMESTAMP)"
    )
    parser.add_argument("--partition", "--queue", dest="partition", help="partition (SLURM) or queue (PBS, Cobalt)")
    parser.add_argument("--account", help="account/project to charge")
    parser.add_argument("--qos", help="SLURM quality of service")
    parser.add_argument("--time", help="wall time per job, [D-]HH:MM:SS (default: the system's)")
    parser.add_argument("--python", help="python on the compute nodes (default: the system's, or this one)")
    parser.add_argument(
        "--signal-seconds",
        type=int,
        default=180,
        metavar="S",
        help="SLURM: send the job SIGUSR1 S seconds before its time limit, so the run checkpoints and is requeued "
        "(docs/reliability.md; 0: no signal; default: 180)",
    )
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- run WORKLOAD [FLAGS]",
        help="the mlscale run command of every point",
    )
    return run


def run(args: argparse.Namespace) -> int:
    from mlscale.launch.jobs.manifest import new_manifest, submit_sweep, write_manifest
    from mlscale.launch.jobs.render import Options, render_sweep
    from mlscale.launch.jobs.sweep import RUNS_DIR, parse_int_list, plan_sweep, safe_name, workload_of
    from mlscale.launch.jobs.system import load_system

    run_argv = list(args.command)
    if run_argv[:1] == ["--"]:
        run_argv = run_argv[1:]
    system = load_system(args.system)
    workload = workload_of(run_argv)
    if args.signal_seconds < 0:
        raise UserError(f"--signal-seconds {args.signal_seconds}: must be 0 or more")
    if args.ranks_per_node is not None and args.ranks_per_node < 1:
        raise UserError(f"--ranks-per-node {args.ranks_per_node}: must be at least 1")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    sweep_dir = Path(args.out or f"sweeps/{system.name}-{safe_name(workload)}-{stamp}").absolute()
    points = plan_sweep(
        system,
        run_argv,
        nodes=parse_int_list(args.nodes, "--nodes"),
        ranks=parse_int_list(args.ranks, "--ranks"),
        ranks_per_node=args.ranks_per_node,
        scaling=args.scaling,
        repeats=args.repeats,
        runs_dir=str(sweep_dir / RUNS_DIR),
    )
    opts = Options(
        python=args.python or system.python or sys.executable,
        partition=args.partition,
        account=args.account,
        qos=args.qos,
        time=args.time,
        array=args.array,
        signal_seconds=args.signal_seconds,
    )
    scripts = render_sweep(system, points, sweep_dir, workload, opts)

    if args.dry_run:
        for script in scripts:
            print(f"# ---- {sweep_dir / script.path} ----")
            print(script.text)
        print(
            f"# {len(points)} point(s) in {len(scripts)} script(s) for {system.name} "
            f"({system.scheduler} + {system.launcher}); dry run: nothing written"
        )
        return 0

    manifest = new_manifest(system, run_argv, args.scaling, args.repeats, scripts)
    _write_sweep_dir(sweep_dir, scripts, manifest, write_manifest)
    print(f"{sweep_dir}: {len(points)} point(s) in {len(scripts)} script(s)")
    if args.submit:
        submit_sweep(sweep_dir, manifest)
        print(f"follow it with: mlscale report {shlex.quote(str(sweep_dir))}")
    else:
        hint = {"none": "bash", "slurm": "sbatch"}.get(system.scheduler, "qsub")
        print(
            f'submit with: cd {shlex.quote(str(sweep_dir))} && for s in scripts/*.sh; do {hint} "$s"; done   '
            f"(or rerun with --submit to record job ids)"
        )
    return 0


def _write_sweep_dir(sweep_dir: Path, scripts, manifest: dict, write_manifest) -> None:
    """Create the whole sweep directory or nothing: build it beside, then rename it into place."""
    if sweep_dir.exists() and (not sweep_dir.is_dir() or any(sweep_dir.iterdir())):
        raise UserError(f"{sweep_dir}: already exists and is not empty; choose another --out")
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(sweep_dir) as tmp:
        for sub in ("scripts", "logs", "runs"):
            (tmp / sub).mkdir()
        for script in scripts:
            path = tmp / script.path
            path.write_text(script.text)
            path.chmod(0o755)  # Cobalt runs only executable scripts
        write_manifest(tmp, manifest)


command(
    "launch",
    help="write/submit job scripts for a scaling sweep (SLURM, PBS, ALPS, PALS, mpirun)",
    description=DESCRIPTION,
    order=40,
)(configure)
