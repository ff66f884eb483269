"""Broken files for every workload's data format, and broken records and stores.

Good inputs come from the real sample files (tests/data/real) and from small data sets written once
per session by the real `mlscale data W` (`generated`); each case copies what it needs into its own
folder and breaks it there.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
from support.records import make_run
from support.run import REAL_DATA, child_env, mlscale_cmd

from badinput.cases import Case, Setup, both, case, mkdir, write

# Small data sets, one command each (a few seconds apiece on a loaded machine).
GENERATE = {
    "cosmic-tagger": ["--events", "4", "--test-events", "2", "--height", "64", "--width", "128"],
    "methane-plume": [
        "--lines",
        "64",
        "--samples",
        "64",
        "--train-tiles",
        "8",
        "--test-tiles",
        "4",
        "--tile-size",
        "32",
    ],
    "cloud-mask": ["--products", "2", "--rows", "64", "--columns", "80"],
    "rareplanes": [
        "--images",
        "2",
        "--test-images",
        "1",
        "--width",
        "256",
        "--height",
        "144",
        "--planes",
        "3",
        "--min-length",
        "28",
        "--max-length",
        "60",
    ],  # fmt: skip
    "flow-rank": ["--images", "40", "--width", "64", "--height", "48"],
}
_built: dict[str, Path] = {}


def _mlscale(*argv: str) -> None:
    subprocess.run(mlscale_cmd(*argv), env=child_env(), check=True, capture_output=True, timeout=600)


def generated(workload: str) -> Path:
    """A small, good data set of `workload`, written once per session by `mlscale data`."""
    if workload not in _built:
        folder = tempfile.mkdtemp(prefix=f"mlscale-badinput-{workload}-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the session's, not left in /tmp
        out = Path(folder) / "data"
        _mlscale("data", workload, "--out", str(out), *GENERATE[workload])
        if workload == "cloud-mask":  # the run reads converted products
            _mlscale("cloud-mask", "convert", str(out / "products"), str(out / "converted"))
        _built[workload] = out
    return _built[workload]


def copy_data(workload: str, part: str, dest: str) -> Setup:
    def setup(d: Path) -> None:
        src = generated(workload) / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, d / dest)

    return setup


def copy_real(name: str, dest: str) -> Setup:
    def setup(d: Path) -> None:
        src = REAL_DATA / name
        if src.is_dir():
            shutil.copytree(src, d / dest)
        else:
            shutil.copy(src, d / dest)
            (d / dest).chmod(0o644)

    return setup


def edit(path: str, fn: Callable[[Path], None]) -> Setup:
    return lambda d: fn(d / path)


def truncate(path: str) -> Setup:
    def setup(d: Path) -> None:
        data = (d / path).read_bytes()
        (d / path).write_bytes(data[: len(data) // 2])

    return setup


def remove(path: str) -> Setup:
    def setup(d: Path) -> None:
        target = d / path
        shutil.rmtree(target) if target.is_dir() else target.unlink()

    return setup


def h5_edit(path: str, fn: Callable[[h5py.File], None]) -> Setup:
    def setup(d: Path) -> None:
        with h5py.File(d / path, "r+") as f:
            fn(f)

    return setup


def plain_h5(path: str) -> Setup:
    def setup(d: Path) -> None:
        with h5py.File(d / path, "w") as f:
            f["images"] = np.zeros((2, 3))

    return setup


def broken_formats(prefix: str, argv: tuple[str, ...], name: str, words_of: Callable[[str], tuple] = lambda n: (n,)):
    """Missing, empty, text and truncated forms of one input file `name` (argv holds `{f}` for it)."""
    args = lambda f: tuple(a.replace("{f}", f) for a in argv)  # noqa: E731
    return [
        Case(f"{prefix}-missing", args(f"{{d}}/{name}"), words_of(name)),
        Case(f"{prefix}-empty", args(f"{{d}}/{name}"), words_of(name), write(name, b"")),
        Case(f"{prefix}-text", args(f"{{d}}/{name}"), words_of(name), write(name, "this is not data\n")),
        Case(f"{prefix}-directory", args(f"{{d}}/{name}"), words_of(name), mkdir(name)),
    ]


# -- cosmic-tagger: larcv3 ----------------------------------------------------------------------

WIRE = "Data/sparse2d_sbndwire_group/voxels"
CT = ("run", "cosmic-tagger", "--mode", "iotest", "--backend", "single", "--device", "cpu", "--batch-size", "1",
      "--out", "{d}/out", "--no-progress")  # fmt: skip


def _voxel(field: str, value) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        voxels = f[WIRE]
        row = voxels[10]
        row[field] = value
        voxels[10] = row

    return fn


REAL_CT = copy_real("cosmic_tagging_light.h5", "ct.h5")
COSMIC = [
    *broken_formats("cosmic-data", (*CT, "--data", "{f}"), "ct.h5"),
    case("cosmic-truncated", *CT, "--data", "{d}/ct.h5", words=("ct.h5", "not a readable HDF5"),
         setup=both(REAL_CT, truncate("ct.h5"))),
    case("cosmic-not-larcv", *CT, "--data", "{d}/ct.h5", words=("ct.h5", "not a larcv3 file"), setup=plain_h5("ct.h5")),
    case("cosmic-wrong-producer", *CT, "--data", "{d}/ct.h5", "--image-producer", "nosuch",
         words=("sparse2d_nosuch_group", "no such"), setup=REAL_CT),
    case("cosmic-id-out-of-range", *CT, "--data", "{d}/ct.h5", words=("voxel id", "out of range"),
         setup=both(REAL_CT, h5_edit("ct.h5", _voxel("id", 1280 * 2048 + 5)))),
    case("cosmic-nan-value", *CT, "--data", "{d}/ct.h5", words=("ct.h5", "nan"),
         setup=both(REAL_CT, h5_edit("ct.h5", _voxel("value", np.nan)))),
    case("cosmic-inf-value", *CT, "--data", "{d}/ct.h5", words=("ct.h5", "inf"),
         setup=both(REAL_CT, h5_edit("ct.h5", _voxel("value", np.inf)))),
    case("cosmic-dir-without-files", *CT, "--data", "{d}/ctdir", words=("ctdir",), setup=mkdir("ctdir")),
    case("cosmic-test-data-missing", *CT, "--data", "{d}/ct.h5", "--test-data", "{d}/nope.h5", "--mode", "inference",
         words=("nope.h5",), setup=REAL_CT),
]  # fmt: skip

# -- methane-plume: HDF5 tiles and ENVI flightlines ---------------------------------------------------

MP = ("run", "methane-plume", "--backend", "single", "--device", "cpu", "--batch-size", "2", "--tile-size", "32",
      "--out", "{d}/out", "--no-progress", "--epochs", "1")  # fmt: skip
MP_INFER = (*MP, "--mode", "inference", "--rows", "8")
FLIGHT = "flightlines/ang_synth000_ch4mf_img"


def _header(path: str, old: str, new: str) -> Setup:
    def setup(d: Path) -> None:
        hdr = d / (path + ".hdr")
        text = hdr.read_text()
        assert old in text, text
        hdr.write_text(text.replace(old, new))

    return setup


MP_FLIGHT = copy_data("methane-plume", "flightlines", "flightlines")
PLUME = [
    *broken_formats("plume-tiles", (*MP, "--tiles", "{f}"), "tiles.h5"),
    case("plume-tiles-truncated", *MP, "--tiles", "{d}/tiles.h5", words=("tiles.h5",),
         setup=both(copy_data("methane-plume", "tiles.h5", "tiles.h5"), truncate("tiles.h5"))),
    case("plume-tiles-wrong-datasets", *MP, "--tiles", "{d}/tiles.h5", words=("tiles.h5",), setup=plain_h5("tiles.h5")),
    case("plume-tiles-nan", *MP, "--tiles", "{d}/tiles.h5", words=("tiles.h5", "nan"),
         setup=both(copy_data("methane-plume", "tiles.h5", "tiles.h5"),
                    h5_edit("tiles.h5", lambda f: f["train/ch4"].__setitem__((0, 0, 0), np.nan)))),
    case("plume-tiles-no-flag", *MP, words=("--tiles",)),
    case("plume-flightline-missing", *MP_INFER, "--flightline", "{d}/nope_img", words=("nope_img",)),
    case("plume-flightline-no-hdr", *MP_INFER, "--flightline", f"{{d}}/{FLIGHT}", words=("no ENVI header",),
         setup=both(MP_FLIGHT, remove(FLIGHT + ".hdr"))),
    case("plume-flightline-header-narrower", *MP_INFER, "--flightline", f"{{d}}/{FLIGHT}",
         words=("ang_synth000_ch4mf_img", "bytes"),
         setup=both(MP_FLIGHT, _header(FLIGHT, "samples = 64", "samples = 60"))),
    case("plume-flightline-header-wider", *MP_INFER, "--flightline", f"{{d}}/{FLIGHT}",
         words=("ang_synth000_ch4mf_img", "bytes"),
         setup=both(MP_FLIGHT, _header(FLIGHT, "samples = 64", "samples = 70"))),
    case("plume-flightline-bad-interleave", *MP_INFER, "--flightline", f"{{d}}/{FLIGHT}",
         words=("ang_synth000_ch4mf_img", "interleave"),
         setup=both(MP_FLIGHT, _header(FLIGHT, "interleave = bip", "interleave = zigzag"))),
    case("plume-flightline-not-envi", *MP_INFER, "--flightline", f"{{d}}/{FLIGHT}", words=("not an ENVI header",),
         setup=both(MP_FLIGHT, write(FLIGHT + ".hdr", "hello\n"))),
    case("plume-flightline-truncated", *MP_INFER, "--flightline", f"{{d}}/{FLIGHT}",
         words=("ang_synth000_ch4mf_img", "bytes"), setup=both(MP_FLIGHT, truncate(FLIGHT))),
    case("plume-predict-no-model", "plume", "predict", f"{{d}}/{FLIGHT}", "--model", "{d}/nope.pt",
         "--output", "{d}/out", words=("nope.pt",), setup=MP_FLIGHT),
    case("plume-train-tiles-missing", "plume", "train", "{d}/nope.h5", "--output", "{d}/out/m.pt", words=("nope.h5",)),
    case("plume-train-output-dir-missing", "plume", "train", "{d}/tiles.h5", "--output", "{d}/no/such/m.pt",
         words=("no/such", "does not exist"), setup=copy_data("methane-plume", "tiles.h5", "tiles.h5")),
]  # fmt: skip

# -- cloud-mask: converted HDF5, .SEN3 NetCDF, match-up table ------------------------------------

CM = ("run", "cloud-mask", "--backend", "single", "--device", "cpu", "--batch-size", "1", "--patch-size", "32",
      "--infer-border", "4", "--loss-border", "4",
      "--out", "{d}/out", "--no-progress", "--mode", "iotest")  # fmt: skip
PRODUCTS = copy_data("cloud-mask", "products", "products")


def _first_product(d: Path) -> Path:
    return sorted((d / "products").iterdir())[0]


def _in_product(name: str, fn: Callable[[Path], None]) -> Setup:
    return lambda d: fn(_first_product(d) / name)


def _netcdf_drop_variable(path: Path) -> None:
    import xarray as xr

    with xr.open_dataset(path) as ds:
        kept = ds.drop_vars(list(ds.data_vars)[0]).load()
    kept.to_netcdf(path)


def _netcdf_shrink(path: Path) -> None:
    import xarray as xr

    with xr.open_dataset(path) as ds:
        small = ds.isel({dim: slice(0, 5) for dim in ds.dims}).load()
    small.to_netcdf(path)


def _matchups_without(column: str) -> Setup:
    def setup(d: Path) -> None:
        import pandas as pd

        table = pd.read_hdf(generated("cloud-mask") / "sst_matchups.h5")
        table.drop(columns=[column]).to_hdf(d / "matchups.h5", key="matchups", format="table")

    return setup


CONVERT = ("cloud-mask", "convert", "{d}/products", "{d}/converted")
CLOUD = [
    case("cloud-data-missing", *CM, "--data", "{d}/nope", words=("nope",)),
    case("cloud-data-empty", *CM, "--data", "{d}/conv", words=("conv",), setup=mkdir("conv")),
    case("cloud-data-truncated", *CM, "--data", "{d}/conv", words=(".hdf",),
         setup=both(copy_data("cloud-mask", "converted", "conv"),
                    lambda d: truncate(str(sorted((d / "conv").rglob("*.hdf"))[0].relative_to(d)))(d))),
    case("cloud-data-wrong-datasets", *CM, "--data", "{d}/conv", words=("x.hdf",),
         setup=both(mkdir("conv/day"), plain_h5("conv/day/x.hdf"))),
    case("cloud-convert-missing-dir", *CONVERT, words=("products",)),
    case("cloud-convert-empty-dir", *CONVERT, words=("products",), setup=mkdir("products")),
    case("cloud-convert-missing-file", *CONVERT, words=("S7_BT_in.nc",),
         setup=both(PRODUCTS, _in_product("S7_BT_in.nc", Path.unlink))),
    case("cloud-convert-garbage-file", *CONVERT, words=("S8_BT_in.nc",),
         setup=both(PRODUCTS, _in_product("S8_BT_in.nc", lambda p: p.write_bytes(b"\x89HDF garbage")))),
    case("cloud-convert-missing-variable", *CONVERT, words=("flags_in.nc",),
         setup=both(PRODUCTS, _in_product("flags_in.nc", _netcdf_drop_variable))),
    case("cloud-convert-wrong-shape", *CONVERT, words=("S1_radiance_an.nc",),
         setup=both(PRODUCTS, _in_product("S1_radiance_an.nc", _netcdf_shrink))),
    case("cloud-convert-out-is-file", "cloud-mask", "convert", "{d}/products", "{d}/conv", words=("conv",),
         setup=both(PRODUCTS, write("conv", "x"))),
    case("cloud-sst-missing-table", "cloud-mask", "sst", "{d}/nope.h5", "{d}/masks", words=("nope.h5",),
         setup=mkdir("masks")),
    case("cloud-sst-not-a-table", "cloud-mask", "sst", "{d}/m.h5", "{d}/masks", words=("m.h5",),
         setup=both(mkdir("masks"), write("m.h5", "not hdf5"))),
]  # fmt: skip
for column in ("isst", "slat", "slon"):
    CLOUD.append(case(f"cloud-sst-no-{column}-column", "cloud-mask", "sst", "{d}/matchups.h5", "{d}/masks",
                      words=("matchups.h5", column),
                      setup=both(mkdir("masks"), _matchups_without(column))))  # fmt: skip

# -- rareplanes: PNG images and masks, XML --------------------------------------------------------

TILE = ("rareplanes", "tile", "{d}/raw", "{d}/tiled")
RP = ("run", "rareplanes", "--backend", "single", "--device", "cpu", "--mode", "iotest", "--batch-size", "1",
      "--out", "{d}/out", "--no-progress")  # fmt: skip
RAW = copy_real("rareplanes_example", "raw")
IMG, MASK, XML = ("images/Adelaide_Airport_0_0_101.png", "masks/Adelaide_Airport_0_0_101_mask.png",
                  "xmls/Adelaide_Airport_0_0_101.xml")  # fmt: skip


def _resize_png(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        im.resize((im.width // 2, im.height // 2)).save(path)


def _xml_without_colours(path: Path) -> None:
    import re

    text = path.read_text()
    path.write_text(re.sub(r"<object_mask_color_rgba>[^<]*</object_mask_color_rgba>", "", text))


RARE = [
    case("rareplanes-tile-missing-dir", *TILE, words=("raw",)),
    case("rareplanes-tile-empty-dir", *TILE, words=("raw",), setup=mkdir("raw")),
    case("rareplanes-tile-image-without-mask", *TILE, words=("Adelaide_Airport_0_0_101",),
         setup=both(RAW, lambda d: (d / "raw" / MASK).unlink())),
    case("rareplanes-tile-mask-other-size", *TILE, words=("Adelaide_Airport_0_0_101_mask.png",),
         setup=both(RAW, lambda d: _resize_png(d / "raw" / MASK))),
    case("rareplanes-tile-corrupt-png", *TILE, words=("Adelaide_Airport_0_0_101.png",),
         setup=both(RAW, lambda d: truncate(f"raw/{IMG}")(d))),
    case("rareplanes-tile-xml-without-colours", *TILE, words=("Adelaide_Airport_0_0_101.xml",),
         setup=both(RAW, lambda d: _xml_without_colours(d / "raw" / XML))),
    case("rareplanes-tile-xml-garbage", *TILE, words=("Adelaide_Airport_0_0_101.xml",),
         setup=both(RAW, write(f"raw/{XML}", "<annotation"))),
    case("rareplanes-tile-size-0", *TILE, "--tile-size", "0", words=("--tile-size",), setup=RAW),
    case("rareplanes-data-missing", *RP, "--data", "{d}/nope", words=("nope",)),
    case("rareplanes-data-empty", *RP, "--data", "{d}/rp", words=("rp",), setup=mkdir("rp")),
    case("rareplanes-data-untiled", *RP, "--data", "{d}/rp", words=("images_tiled", "rareplanes tile"),
         setup=copy_data("rareplanes", ".", "rp")),
]  # fmt: skip

# -- flow-rank: CSV tables and JPEG photos -----------------------------------------------------------

FR = ("run", "flow-rank", "--backend", "single", "--device", "cpu", "--mode", "iotest", "--batch-size", "2",
      "--backbone", "tiny", "--input-size", "32", "--out", "{d}/out", "--no-progress", "--data", "{d}/fr")  # fmt: skip
STATION = copy_data("flow-rank", ".", "fr")


def _csv(name: str, fn: Callable[[list[str]], list[str]]) -> Setup:
    def setup(d: Path) -> None:
        path = d / "fr" / name
        path.write_text("\n".join(fn(path.read_text().splitlines())) + "\n")

    return setup


def _drop_column(column: str) -> Callable[[list[str]], list[str]]:
    def fn(lines: list[str]) -> list[str]:
        header = lines[0].split(",")
        keep = [i for i, name in enumerate(header) if name != column]
        return [",".join(line.split(",")[i] for i in keep) for line in lines]

    return fn


def _first_row(fn: Callable[[str], str]) -> Callable[[list[str]], list[str]]:
    return lambda lines: [lines[0], fn(lines[1]), *lines[2:]]


def _first_image(d: Path) -> Path:
    return d / "fr" / "images" / (d / "fr" / "pairs.csv").read_text().splitlines()[1].split(",")[4]


FLOW = [
    case("flow-data-missing", *FR[:-1], "{d}/nope", words=("nope",)),
    case("flow-no-images-csv", *FR, words=("images.csv",), setup=both(STATION, remove("fr/images.csv"))),
    case("flow-no-pairs-csv", *FR, words=("pairs.csv",), setup=both(STATION, remove("fr/pairs.csv"))),
    case("flow-pairs-no-label", *FR, words=("pairs.csv", "label"),
         setup=both(STATION, _csv("pairs.csv", _drop_column("label")))),
    case("flow-images-no-filename", *FR, words=("images.csv", "filename"),
         setup=both(STATION, _csv("images.csv", _drop_column("filename")))),
    case("flow-pairs-empty", *FR, words=("pairs.csv",), setup=both(STATION, write("fr/pairs.csv", ""))),
    case("flow-image-missing", *FR, words=("jpg",), setup=both(STATION, lambda d: _first_image(d).unlink())),
    case("flow-image-corrupt", *FR, words=("jpg",),
         setup=both(STATION, lambda d: _first_image(d).write_bytes(b"\xff\xd8garbage"))),
    case("flow-pair-unknown-image", *FR, words=("pairs.csv",),
         setup=both(STATION, _csv("pairs.csv", _first_row(lambda r: r.replace(r.split(",")[2], "999999999", 1))))),
    case("flow-label-out-of-range", *FR, words=("pairs.csv", "label"),
         setup=both(STATION, _csv("pairs.csv", _first_row(lambda row: row.rsplit(",", 1)[0] + ",7")))),
]  # fmt: skip

# -- records and stores: report, runs, compare ------------------------------------------------------


def _run(name: str = "r1") -> Setup:
    return lambda d: make_run(d / "res", name)


def _record(fn: Callable[[dict], object]) -> Setup:
    def setup(d: Path) -> None:
        path = d / "res" / "r1" / "record.json"
        record = json.loads(path.read_text())
        fn(record)
        path.write_text(json.dumps(record))

    return setup


RECORDS = []
for command in (("report",), ("compare",)):
    c = command[0]
    RECORDS += [
        case(f"{c}-no-such-dir", *command, "{d}/nope", words=("nope", "no such")),
        case(f"{c}-empty-dir", *command, "{d}/res", words=("res", "no run records"), setup=mkdir("res")),
        case(f"{c}-record-invalid-json", *command, "{d}/res", words=("record.json", "not valid JSON"),
             setup=both(_run(), write("res/r1/record.json", '{"schema_version": 1, "run_id": '))),
        case(f"{c}-record-string-schema", *command, "{d}/res", words=("record.json", "schema_version"),
             setup=both(_run(), _record(lambda r: r.update(schema_version="1")))),
        case(f"{c}-record-no-run-id", *command, "{d}/res", words=("record.json", "run_id"),
             setup=both(_run(), _record(lambda r: r.pop("run_id")))),
        case(f"{c}-record-newer-schema", *command, "{d}/res", words=("record.json", "newer"),
             setup=both(_run(), _record(lambda r: r.update(schema_version=99)))),
        case(f"{c}-record-a-list", *command, "{d}/res", words=("record.json", "not an mlscale run record"),
             setup=both(_run(), write("res/r1/record.json", "[1, 2]"))),
        case(f"{c}-record-binary", *command, "{d}/res", words=("record.json",),
             setup=both(_run(), write("res/r1/record.json", b"\xff\xfe\x00garbage"))),
    ]  # fmt: skip
RECORDS += [
    case("report-ranks-truncated", "report", "{d}/res", words=("ranks.jsonl", "line 1"),
         setup=both(_run(), write("res/r1/ranks.jsonl", '{"rank": 0, "ho'))),
    case("report-ranks-not-objects", "report", "{d}/res", words=("ranks.jsonl", "line 1"),
         setup=both(_run(), write("res/r1/ranks.jsonl", "[0]\n"))),
    case("report-out-is-file", "report", "{d}/res", "--out", "{d}/res/r1/record.json", words=("--out",), setup=_run()),
    case("runs-garbage-index", "runs", "{d}/res", words=("index.sqlite", "not a readable results index"),
         setup=both(_run(), write("res/index.sqlite", "this is not sqlite" * 100))),
    case("runs-no-such-root", "runs", "{d}/nope", words=("nope",)),
    case("runs-bad-since", "runs", "{d}/res", "--since", "yesterday", words=("--since",), setup=_run()),
    case("runs-older-than-negative", "runs", "{d}/res", "--older-than", "-1", words=("--older-than",), setup=_run()),
    case("compare-reference-missing", "compare", "{d}/res", "--reference", "{d}/ref.yaml", words=("ref.yaml",),
         setup=_run()),
    case("compare-reference-garbage", "compare", "{d}/res", "--reference", "{d}/ref.yaml", words=("ref.yaml",),
         setup=both(_run(), write("ref.yaml", "a: [1, 2\n"))),
    case("compare-reference-wrong-shape", "compare", "{d}/res", "--reference", "{d}/ref.yaml", words=("ref.yaml",),
         setup=both(_run(), write("ref.yaml", "- 1\n- 2\n"))),
]  # fmt: skip

# -- under a real `mpirun -np 2`: every rank ends, promptly, with the one line --------------------------

TINY = ("--model", "tiny", "--image-size", "32", "--num-classes", "4", "--steps-per-epoch", "2", "--test-steps", "1",
        "--batch-size", "2", "--epochs", "1", "--device", "cpu", "--no-progress")  # fmt: skip
MPI = [
    case("mpirun-run-id-exists", "run", "synthetic", *TINY, "--out", "{d}/out", "--run-id", "r1",
         words=("out/r1", "already exists"), setup=mkdir("out/r1"), ranks=2, timeout=90),
    case("mpirun-global-batch-not-divisible", "run", "synthetic", *TINY, "--out", "{d}/out", "--global-batch-size", "3",
         words=("--global-batch-size 3", "does not divide by 2 ranks"), ranks=2, timeout=90),
    case("mpirun-voxel-id-out-of-range-on-one-rank", *CT, "--data", "{d}/ct.h5", "--backend", "mpi",
         words=("voxel id", "out of range"), setup=both(REAL_CT, h5_edit("ct.h5", _voxel("id", 1280 * 2048 + 5))),
         ranks=2, timeout=120,
         flaky="the watchdog's second line ('rank 0 ... died') is gone since rank 0 announces the end (25 of 26 "
               "runs passed); the one failure seen was not captured: kept non-strict until it is understood"),
]  # fmt: skip

DATA_CASES: list[Case] = [*COSMIC, *PLUME, *CLOUD, *RARE, *FLOW, *RECORDS, *MPI]
