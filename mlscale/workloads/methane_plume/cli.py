"""`mlscale plume predict|train`: the seed's methane-plume CLI on top of the methane-plume workload.

    mlscale plume predict FLIGHTLINE -m MODEL -g GPU [GPU ...] -b BATCH -o OUTDIR --method cnn|fcn|exact
    mlscale plume train TILES -o MODEL.pt [--arch googlenet|tilenet] [--epochs N] [-b BATCH]
        [--dense-consistency LAMBDA ...]  (GoogLeNet trained for --method fcn; docs/methane-plume.md)

Both run through the benchmark runner, so they distribute over the ranks of an mpirun/srun launch
(rows of the flightline split across ranks, one GPU per rank) and can keep a run record
(`--record DIR`) for `mlscale report`, which prints the seed's runtime table from it.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from mlscale.cli import command

EPILOG = """examples:
  mlscale data methane-plume --out data/
  mlscale plume train data/tiles.h5 -o models/COVID_QC.pt --epochs 3
  mlscale data methane-plume --out data/ --context 64     # tiles with a ring of context, then:
  mlscale plume train data/tiles.h5 -o models/dense.pt --dense-consistency 4 --lr-schedule one-cycle --lr 0.02
  mlscale plume predict data/flightlines/ang_synth000_ch4mf_img -m COVID_QC -g -1 -b 8 -o out/ --method fcn
  mpirun -np 4 mlscale plume predict FLIGHTLINE -m models/COVID_QC.pt -g 0 1 2 3 -b 32 -o out/ --record runs/"""


def _configure(parser: argparse.ArgumentParser):
    from mlscale.workloads.methane_plume.config import ARCHS, METHODS, PRESETS

    parser.epilog = EPILOG
    sub = parser.add_subparsers(dest="plume_command", metavar="{predict,train}", parser_class=type(parser))
    sub.required = True

    pred = sub.add_parser(
        "predict",
        help="write a flightline's plume saliency map (ENVI, values in [0, 1])",
        description="Generate a flightline saliency map with a CNN (the seed's "
        "cnn_pred_pipeline.py / fcn_pred_pipeline.py).",
    )
    pred.add_argument("flightline", help="flightline ENVI IMG (its .hdr beside it)")
    pred.add_argument(
        "--model",
        "-m",
        required=True,
        help=f"model: a checkpoint path, or a name ({', '.join(PRESETS)}) looked up as NAME.pt in "
        "$MLSCALE_PLUME_MODELS or ./models",
    )
    pred.add_argument(
        "--gpus",
        "-g",
        type=int,
        nargs="+",
        default=[-1],
        help="GPU devices for inference, one per rank; -1 for CPU (default: -1)",
    )
    pred.add_argument(
        "--batch",
        "-b",
        type=int,
        default=8,
        help="batch size per device: tiles per forward (cnn), or 256x256-tile equivalents of "
        "feature-map positions per forward (fcn, exact) (default: 8)",
    )
    pred.add_argument("--output", "-o", default=".", help="output directory for the saliency map (default: ./)")
    pred.add_argument(
        "--method",
        choices=METHODS,
        default="cnn",
        help="cnn: a tile per pixel (the seed); fcn: dense FCN with shift-and-stitch; exact: dense "
        "evaluation of a padding-free tilenet, equal to cnn (default: cnn)",
    )
    pred.add_argument(
        "--preset", choices=tuple(PRESETS), help="CH4 normalisation (default: the checkpoint's, or the model name's)"
    )
    pred.add_argument("--arch", choices=ARCHS, help="architecture, for a checkpoint that is a bare state_dict")
    pred.add_argument("--rows", type=int, default=0, help="only the first ROWS lines (0: all)")
    pred.add_argument(
        "--amp",
        action="store_true",
        help="mixed precision: bfloat16 autocast on CPUs, float16 on GPUs (faster; the map moves by ~1e-2, "
        "see docs/benchmarks.md)",
    )
    _common(pred)

    train = sub.add_parser(
        "train",
        help="train a plume tile classifier on tiles.h5 and save a checkpoint",
        description="Train the plume tile classifier (class-weighted cross-entropy, SGD with "
        "momentum) and save it with its best-F1 threshold.",
    )
    train.add_argument("tiles", help="tiles.h5 from `mlscale data methane-plume`")
    train.add_argument("--output", "-o", required=True, help="checkpoint to write (e.g. models/COVID_QC.pt)")
    train.add_argument("--arch", choices=ARCHS, default="googlenet", help="network (default: googlenet)")
    train.add_argument(
        "--preset", choices=tuple(PRESETS), default="COVID_QC", help="CH4 normalisation (default: COVID_QC)"
    )
    train.add_argument("--epochs", type=int, default=3, help="epochs (default: 3)")
    train.add_argument("--batch", "-b", type=int, default=16, help="tiles per rank per step (default: 16)")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 1e-3)")
    train.add_argument("--gpus", "-g", type=int, nargs="+", default=[-1], help="GPU per rank; -1 for CPU")
    train.add_argument("--max-steps", type=int, help="cap on steps per epoch")
    train.add_argument("--checkpoint", help="weights to start from")
    train.add_argument(
        "--seed", type=int, default=1234, help="seeds the weights, the batch order and the augmentation (default: 1234)"
    )
    _training_recipe(train)
    _common(train)
    return plume


TRAINING_FLAGS = ("lr_schedule", "weight_decay", "dense_consistency", "context", "dense_warmup", "dense_share",
                  "dense_clip")  # fmt: skip


def _training_recipe(p: argparse.ArgumentParser) -> None:
    """The workload's training options (`MethanePlumeConfig`), with the same help as `mlscale run`."""
    import dataclasses

    from mlscale.workloads.methane_plume.config import MethanePlumeConfig

    for f in dataclasses.fields(MethanePlumeConfig):
        if f.name in TRAINING_FLAGS:
            p.add_argument(
                "--" + f.name.replace("_", "-"),
                type=type(f.default),
                default=f.default,
                help=f"{f.metadata['help']} (default: {f.default})",
                **{k: f.metadata[k] for k in ("choices", "metavar") if k in f.metadata},
            )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--record", metavar="DIR", help="keep the run record (record.json ...) under DIR for `mlscale report`"
    )
    p.add_argument("--system", default="local", help="system name for the record (default: local)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")


def _device(gpus: list[int]) -> str:
    """`-g -1` is the CPU; GPU ids become CUDA_VISIBLE_DEVICES, so that rank i uses the i-th listed GPU."""
    from mlscale.errors import UserError

    if gpus == [-1]:
        return "cpu"
    if any(g < 0 for g in gpus):
        raise UserError(f"--gpus {' '.join(map(str, gpus))}: use -1 alone for the CPU, or GPU ids >= 0")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", ",".join(map(str, gpus)))
    return "cuda"


def _backend() -> str:
    from mlscale.launch.env import detect_environment

    return "mpi" if detect_environment().size > 1 else "single"


def plume(args: argparse.Namespace) -> int:
    return predict(args) if args.plume_command == "predict" else train(args)


def predict(args: argparse.Namespace) -> int:
    from mlscale.errors import UserError

    device = _device(args.gpus)
    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}")
    from mlscale.bench.config import RunConfig
    from mlscale.commands.run import run_job
    from mlscale.fileio import atomic_path
    from mlscale.io.envi import envi_header_name, inspect_envi
    from mlscale.workloads.methane_plume.checkpoint import load_checkpoint, resolve_model_path
    from mlscale.workloads.methane_plume.config import PRESETS
    from mlscale.workloads.methane_plume.workload import MethanePlume, MethanePlumeConfig

    inspect_envi(args.flightline, expect_bands=4)  # every rank: a bad file stops all of them, at once
    model_path = resolve_model_path(args.model)
    _, meta = load_checkpoint(model_path, args.arch)
    if args.method == "exact" and meta["arch"] != "tilenet":
        raise UserError(
            f"{model_path}: --method exact needs a padding-free model (arch tilenet), this is "
            f"{meta['arch']}, which pads its convolutions: use --method fcn"
        )
    preset = args.preset or meta.get("preset") or (args.model if args.model in PRESETS else "COVID_QC")
    config = MethanePlumeConfig(
        flightline=str(args.flightline),
        arch=meta["arch"],
        preset=preset,
        tile_size=int(meta.get("tile_size") or 256),
        method=args.method,
        rows=args.rows,
    )
    out = Path(args.output)
    record_root = Path(args.record) if args.record else out / ".mlscale-plume-runs"
    run = RunConfig(
        mode="inference",
        batch_size=args.batch,
        weights=str(model_path),
        device=device,
        backend=_backend(),
        out=str(record_root),
        system=args.system,
        progress=args.progress,
        tag=f"plume-predict gpus={','.join(map(str, args.gpus))}",
        amp=args.amp,
    )
    run_dir = run_job(MethanePlume, config, run)
    if run_dir is None:  # not rank 0
        return 0
    stem = Path(args.flightline).name.removesuffix(".img")
    source = run_dir / f"{stem}_saliency.img"
    target = out / source.name
    out.mkdir(parents=True, exist_ok=True)
    for src, dst in ((envi_header_name(source), envi_header_name(target)), (source, target)):
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    if not args.record:
        shutil.rmtree(record_root, ignore_errors=True)
    print(f"wrote {target} ({args.method}, {'record ' + str(run_dir) if args.record else 'no record kept'})")
    return 0


def train(args: argparse.Namespace) -> int:
    device = _device(args.gpus)
    from mlscale.bench.config import RunConfig
    from mlscale.commands.run import run_job
    from mlscale.workloads.methane_plume.checkpoint import build_tile_classifier, check_tile_size
    from mlscale.workloads.methane_plume.training import check_dense_config, read_labels
    from mlscale.workloads.methane_plume.workload import MethanePlume, MethanePlumeConfig

    read_labels(args.tiles, "train")  # every rank: a bad file is one error line, before any work
    import h5py

    with h5py.File(args.tiles, "r") as h5:
        tile_size = int(h5.attrs["tile_size"])
    config = MethanePlumeConfig(
        tiles=str(args.tiles),
        arch=args.arch,
        preset=args.preset,
        tile_size=tile_size,
        **{name: getattr(args, name) for name in TRAINING_FLAGS},
    )
    if config.dense_consistency:
        check_dense_config(config)
    check_tile_size(build_tile_classifier(args.arch), args.arch, tile_size)
    record_root = Path(args.record) if args.record else Path(args.output).parent / ".mlscale-plume-runs"
    run = RunConfig(
        mode="train",
        epochs=args.epochs,
        batch_size=args.batch,
        lr=args.lr,
        weights=args.checkpoint or "",
        save_weights=str(args.output),
        device=device,
        backend="ddp" if _backend() == "mpi" else "single",
        out=str(record_root),
        system=args.system,
        progress=args.progress,
        max_steps=args.max_steps,
        seed=args.seed,
        tag="plume-train",
    )
    run_dir = run_job(MethanePlume, config, run)
    if run_dir is None:
        return 0
    if not args.record:
        shutil.rmtree(record_root, ignore_errors=True)
    print(f"wrote {args.output}")
    return 0


command(
    "plume", help="methane plumes: saliency maps of ENVI flightlines (predict) and tile classifiers (train)", order=60
)(_configure)
