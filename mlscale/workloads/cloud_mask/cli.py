"""`mlscale cloud-mask convert|sst`: the seed's pre- and post-processing stages.

    mlscale cloud-mask convert SEN3_DIR OUT_DIR [--split train|validation] [--record DIR]
    mlscale cloud-mask sst MATCHUPS MASK_DIR [--record DIR]

`convert` distributes the products over the ranks of an mpirun/srun launch; both print their
figures and, with `--record DIR`, keep a stage record that `mlscale report` turns into the seed's
stage table. Training and inference are `mlscale run cloud-mask`.
"""

from __future__ import annotations

import argparse
import json

from mlscale.cli import command

EPILOG = """examples:
  mlscale data cloud-mask --out data/ --products 20
  mpirun -np 2 mlscale cloud-mask convert data/products hdf/ --record runs/
  mlscale run cloud-mask --data hdf/ --epochs 2 --out runs/ --save-weights unet.pt
  mlscale run cloud-mask --mode inference --products data/products --weights unet.pt --out runs/
  mlscale cloud-mask sst data/sst_matchups.h5 runs/<inference run> --record runs/
  mlscale report runs/"""


def _configure(parser: argparse.ArgumentParser):
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="cloud_command", metavar="{convert,sst}", parser_class=type(parser))
    sub.required = True
    conv = sub.add_parser(
        "convert",
        help="convert .SEN3 products to HDF5 (bts, rads, refs, bayes, summary), split into day/ and night/",
        description="Convert SLSTR products to the seed's HDF5 files, distributed over the ranks.",
    )
    conv.add_argument("sen3_dir", metavar="SEN3_DIR", help="folder of .SEN3 products")
    conv.add_argument("out_dir", metavar="OUT_DIR", help="output folder (day/ and night/ are made in it)")
    conv.add_argument("--split", choices=("train", "validation"), default="train",
                      help="which of the seed's conversion stages this is (stage table; default: train)")  # fmt: skip
    conv.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="a line per product")
    _common(conv)
    sst = sub.add_parser(
        "sst",
        help="compare satellite and buoy SST under the Bayesian and the U-Net clear-sky masks",
        description="The seed's SST comparison: median and robust standard deviation of satellite - buoy SST.",
    )
    sst.add_argument("matchups", metavar="MATCHUPS", help="match-up table (pandas HDF)")
    sst.add_argument("mask_dir", metavar="MASK_DIR", help="folder of <product>.h5 masks (`--mode inference`)")
    _common(sst)
    return cloud_mask


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--record", metavar="DIR", help="keep a stage record under DIR for `mlscale report`")
    p.add_argument("--system", default="local", help="system name for the record (default: local)")
    p.add_argument("--tag", default="", help="free-form tag stored in the record")


def cloud_mask(args: argparse.Namespace) -> int:
    from mlscale.launch.comm import create_communicator
    from mlscale.launch.env import detect_environment
    from mlscale.workloads.cloud_mask.stages import now

    env = detect_environment()
    comm = create_communicator("mpi" if env.size > 1 else "single", env)
    started = now()
    if args.cloud_command == "convert":
        stage, summary = _convert(args, comm)
    else:
        stage, summary = _sst(args, comm)
    hosts = comm.gather(env.hostname)
    if comm.rank == 0:
        print(summary)
        if args.record:
            from mlscale.workloads.cloud_mask.stages import write_stage_record

            path = write_stage_record(args.record, args.cloud_command, stage, env, comm, system=args.system,
                                      tag=args.tag, started_at=started, total_time=stage["time"], hosts=hosts,
                                      log=summary + "\n")  # fmt: skip
            print(f"record: {path}")
    comm.barrier()
    comm.close()
    return 0


def _convert(args: argparse.Namespace, comm) -> tuple[dict, str]:
    from mlscale.bench.preflight import check_output_dir
    from mlscale.workloads.cloud_mask.convert import convert

    check_output_dir(args.out_dir, "OUT_DIR")
    stage, _ = convert(args.sen3_dir, args.out_dir, comm, progress=args.progress)
    if comm.rank != 0:
        return stage, ""
    stage["split"] = args.split
    mean = stage["seconds_per_product_mean"]
    return stage, (
        f"converted {stage['products']} products ({stage['day']} day, {stage['night']} night) to {args.out_dir} "
        f"in {stage['time']:.2f}s on {comm.size} rank(s) ({mean or 0:.2f}s per product, "
        f"{stage['nan_pixels']} NaN values set to 0)"
    )


def _sst(args: argparse.Namespace, comm) -> tuple[dict, str]:
    import time

    from mlscale.workloads.cloud_mask.matchups import compare, read_matchups

    t0 = time.perf_counter()
    stage = compare(read_matchups(args.matchups), args.mask_dir) if comm.rank == 0 else {}
    stage["time"] = time.perf_counter() - t0
    if comm.rank != 0:
        return stage, ""
    stage.update({"matchups_file": str(args.matchups), "mask_dir": str(args.mask_dir)})
    lines = [f"SST comparison, {stage['selected']} of {stage['matchups']} match-ups pass the filters"]
    for name, label in (("bayes", "Bayesian clear sky"), ("unet", "U-Net clear sky")):
        s = stage[name]
        lines.append(f"  {label:20s} n={s['count']:5d} median={_num(s['median'])} K  RSD={_num(s['rsd'])} K")
    lines.append(f"  mask agreement {_num(stage['agreement'])}  ({stage['time']:.2f}s)")
    return stage, "\n".join(lines) + "\n" + json.dumps({k: stage[k] for k in ("bayes", "unet", "agreement")})


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


command("cloud-mask", help="SLSTR cloud masking: convert products to HDF5, compare SSTs (seed 001)", order=61)(
    _configure
)
