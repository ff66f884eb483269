"""Read speed of larcv3 sparse2d files: mlscale.io.larcv against larcv3's own IOManager.

Both read every event's charge and label producers into numpy (voxel ids and
values per plane), one event at a time as a training loop does. Prints events/s,
MB/s (16-byte voxel records) and the ratio; best of --repeat interleaved rounds, each
round starting with the next contender.
Each round opens the file anew on both sides. "mlscale1" is ours with every
chunk inflated on the calling thread (h5chunks.WORKERS = 1).

    python benchmarks/larcv_read.py [--file F.h5] [--synthetic N] [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mlscale.io import h5chunks
from mlscale.io.larcv import LarcvFile, LarcvWriter
from mlscale.workloads.cosmic_tagger.synth import EventGenerator, SynthParams

REAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "real" / "cosmic_tagging_light.h5"
PRODUCERS = ("sbndwire", "sbnd_cosmicseg")


def ours(path: Path) -> int:
    voxels = 0
    with LarcvFile(path) as f:
        for entry in range(f.n_entries):
            for producer in PRODUCERS:
                voxels += len(f.read(producer, [entry]).ids)
    return voxels


def ours_one_thread(path: Path) -> int:
    """Ours with every chunk inflated on the calling thread: what is left without a second core."""
    workers, h5chunks.WORKERS = h5chunks.WORKERS, 1
    try:
        return ours(path)
    finally:
        h5chunks.WORKERS = workers


def theirs(path: Path) -> int:
    import larcv

    io = larcv.IOManager(larcv.IOManager.kREAD)
    io.add_in_file(str(path))
    io.initialize()
    voxels = 0
    for entry in range(io.get_n_entries()):
        io.read_entry(entry)
        for producer in PRODUCERS:
            for tensor in io.get_data("sparse2d", producer).as_vector():
                ids, values = np.asarray(tensor.indexes()), np.asarray(tensor.values())
                voxels += len(ids) + 0 * len(values)
    io.finalize()
    return voxels


def synthetic_file(n: int, directory: str) -> Path:
    path = Path(directory) / "synthetic_full.h5"
    gen = EventGenerator(SynthParams(), seed=0)
    with LarcvWriter(path, list(PRODUCERS)) as writer:
        for start in range(0, n, 16):
            charge, labels = gen.events(min(16, n - start))
            writer.append({"sbndwire": charge, "sbnd_cosmicseg": labels})
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=None, help="larcv3 file (default: the real sample, or synthetic)")
    parser.add_argument("--synthetic", type=int, default=0, help="also generate N full-resolution synthetic events")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    try:
        import larcv  # noqa: F401

        have_larcv = True
    except ImportError:
        have_larcv = False
        print("larcv3 is not importable (make larcv): timing ours only")
    with tempfile.TemporaryDirectory() as tmp:
        files = [args.file] if args.file else ([REAL] if REAL.is_file() else [])
        if args.synthetic or not files:
            files.append(synthetic_file(args.synthetic or 32, tmp))
        for path in files:
            with LarcvFile(path) as f:
                n_events = f.n_entries
            best = {"mlscale": np.inf, "mlscale1": np.inf, "larcv3": np.inf}
            voxels = 0
            contenders = [("mlscale", ours), ("mlscale1", ours_one_thread), ("larcv3", theirs)]
            for round_ in range(args.repeat):
                # Rotate who goes first: the first after another reader pays for the caches it left cold.
                shift = round_ % len(contenders)
                for name, fn in contenders[shift:] + contenders[:shift]:
                    if name == "larcv3" and not have_larcv:
                        continue
                    t = time.perf_counter()
                    voxels = fn(path)
                    best[name] = min(best[name], time.perf_counter() - t)
            mb = voxels * 16 / 1e6
            print(f"{path.name}: {n_events} events, {voxels / n_events / 2 / 3:.0f} voxels per plane")
            for name, seconds in best.items():
                if np.isfinite(seconds):
                    print(
                        f"  {name:8s} {n_events / seconds:9.1f} events/s  {mb / seconds:8.1f} MB/s  ({seconds:.4f} s)"
                    )
            if have_larcv:
                print(f"  ratio mlscale / larcv3: {best['larcv3'] / best['mlscale']:.2f}x "
                      f"(one thread inflating: {best['larcv3'] / best['mlscale1']:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
