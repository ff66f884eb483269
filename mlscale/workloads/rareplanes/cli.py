"""`mlscale rareplanes tile RAW_DIR OUT_DIR`: the seed's preprocessing, distributed over ranks.

    mlscale rareplanes tile RAW_DIR OUT_DIR [--tile-size 512]
    mpirun -np 4 mlscale rareplanes tile data/raw data/tiled

RAW_DIR is one raw split (images/, masks/, xmls/: RarePlanes' own layout, e.g. its example) or a
directory with train/ and test/ splits (what `mlscale data rareplanes` writes); the tiles go to
OUT_DIR (or OUT_DIR/train and OUT_DIR/test) as images_tiled/ and masks_tiled/. Scenes are shared
round robin among the ranks of an mpirun/srun launch.
"""

from __future__ import annotations

import argparse

from mlscale.bench.logs import rate
from mlscale.cli import command

EPILOG = """examples:
  mlscale data rareplanes --out data/raw --images 40 --test-images 8
  mlscale rareplanes tile data/raw data/tiled
  mpirun -np 2 mlscale rareplanes tile data/raw data/tiled --tile-size 512
  mlscale run rareplanes --data data/tiled --model fcn --backbone resnet18"""


def _configure(parser: argparse.ArgumentParser):
    parser.epilog = EPILOG
    sub = parser.add_subparsers(dest="rareplanes_command", metavar="{tile}", parser_class=type(parser))
    sub.required = True
    tile = sub.add_parser(
        "tile",
        help="cut raw scenes into tiles with instance-id masks (the seed's preprocessing)",
        description=__doc__.split("\n\n")[2].replace("\n", " "),
    )
    tile.add_argument("raw", metavar="RAW_DIR", help="a raw split (images/, masks/, xmls/) or a directory of splits")
    tile.add_argument("out", metavar="OUT_DIR", help="where images_tiled/ and masks_tiled/ go")
    tile.add_argument("--tile-size", type=int, default=512, help="tile height and width (default: 512)")
    return rareplanes


def rareplanes(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from mlscale.bench.preflight import check_output_dir
    from mlscale.errors import UserError
    from mlscale.launch.comm import create_communicator
    from mlscale.launch.env import detect_environment
    from mlscale.workloads.rareplanes.tiling import tile_directory

    if args.tile_size < 1:
        raise UserError(f"--tile-size must be at least 1, got {args.tile_size}")
    check_output_dir(args.out, "OUT_DIR")
    out = Path(args.out)
    created = not out.exists()
    env = detect_environment()
    comm = create_communicator("mpi" if env.size > 1 else "single", env)
    try:
        done = tile_directory(Path(args.raw), out, args.tile_size, comm)
    except BaseException:
        if created:  # nothing half-written: OUT_DIR did not exist before
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        comm.close()
    if comm.rank == 0:
        tiles_per_s = done["tiles"] / done["seconds"] if done["seconds"] else 0.0
        print(
            f"tiled {done['scenes']} scene(s) into {done['tiles']} tiles of {args.tile_size}x{args.tile_size} in "
            f"{args.out} ({', '.join(done['splits'])}) in {done['seconds']:.2f}s on {done['ranks']} rank(s): "
            f"{rate(tiles_per_s, 'tiles/s')}"
        )
    return 0


command("rareplanes", help="RarePlanes: tile raw aerial scenes for the segmentation zoo", order=61)(_configure)
