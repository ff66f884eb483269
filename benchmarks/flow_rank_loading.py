"""flow-rank data loading: can JPEG decoding and augmentation keep up with the training step?

On a synthetic station (written to a temporary folder, or --data DIR), measured in one run:

1. the step's demand: pairs/s of a RankNet training step (forward, backward, SGD) at --batch pairs;
2. our loader (flow-rank's PairDataset, train transforms, DistributedSampler, DataLoader) with 0, 1
   and 2 worker processes: decoded, augmented pairs/s, each as a ratio to the step's demand
   (>= 1: decoding keeps up; below, the step waits for data);
3. JPEG decoding alone, torchvision.io.decode_jpeg against PIL (Image.open + convert + to a tensor),
   photos/s over the same files, and their ratio.

Best of --repeat rounds each, the contenders interleaved. Threads: torch's default unless OMP_NUM_THREADS.

    python benchmarks/flow_rank_loading.py [--data DIR] [--images 200] [--width 320 --height 240]
        [--input-size 96] [--batch 16] [--backbone resnet18] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from mlscale.launch.comm import create_communicator
from mlscale.launch.env import detect_environment
from mlscale.workloads.flow_rank.config import FlowRankData
from mlscale.workloads.flow_rank.loader import EpochLoader, Normalisation, PairDataset, channel_stats
from mlscale.workloads.flow_rank.model import RankNet, ranknet_loss, score_pair
from mlscale.workloads.flow_rank.station import read_station
from mlscale.workloads.flow_rank.synth import write_station


def step_rate(backbone: str, crop: list[int], batch: int, steps: int) -> float:
    """Training pairs/s of the model alone, on random inputs of the crop's size."""
    model = RankNet(backbone)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    left, right = torch.randn(batch, 3, *crop), torch.randn(batch, 3, *crop)
    target = torch.randint(0, 2, (batch,)).float()
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()  # the first step allocates
        ranknet_loss(score_pair(model, left, right), target).backward()
        opt.step()
        opt.zero_grad()
    return steps * batch / (time.perf_counter() - t0)


def loader_rate(dataset: PairDataset, batch: int, workers: int, batches: int) -> float:
    """Pairs/s through the DataLoader, counted from the first batch (worker start-up excluded)."""
    ctx = SimpleNamespace(size=1, rank=0)
    loader = EpochLoader(dataset, ctx, batch, shuffle=True, workers=workers, seed=0)
    it = (pairs for _ in range(batches + 1) for pairs in loader)  # epoch after epoch, as training does
    next(it)
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += len(next(it)[0])
    rate = n / (time.perf_counter() - t0)
    del it, loader  # stops the workers
    return rate


def decode_rate(paths: list[str], decoder) -> float:
    t0 = time.perf_counter()
    for path in paths:
        decoder(path)
    return len(paths) / (time.perf_counter() - t0)


def torchvision_decode(path: str) -> torch.Tensor:
    return decode_jpeg(read_file(path), mode=ImageReadMode.RGB)


def pil_decode(path: str) -> torch.Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a station (default: a synthetic one in a temporary folder)")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=16, help="pairs per step")
    parser.add_argument("--backbone", default="resnet18", choices=("resnet18", "tiny"))
    parser.add_argument("--batches", type=int, default=24, help="batches timed per loader measurement")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp)
        if args.data is None:
            print(write_station(FlowRankData(images=args.images, width=args.width, height=args.height), data))
        station = read_station(str(data))
        train = station.pairs_of("train")
        comm = create_communicator("single", detect_environment({}, use_mpi=False))
        files = [str(station.images_dir / f) for f in train["filename_1"].unique()]
        mean, std = channel_stats(files[:100], ["benchmark"] * 100, comm)
        height, width = torchvision_decode(files[0]).shape[1:]
        norm = Normalisation(args.input_size, width / height, mean, std)
        dataset = PairDataset(train, station.images_dir, station.pairs_csv, norm.transforms(augment=True))
        print(f"threads {torch.get_num_threads()}, {len(train)} train pairs, photos {width}x{height}, "
              f"resize {norm.resize}, crop {norm.crop}, {args.backbone}, batch {args.batch} pairs")  # fmt: skip

        best: dict[str, float] = {}
        for _ in range(args.repeat):
            rates = {"step": step_rate(args.backbone, norm.crop, args.batch, steps=3)}
            for workers in (0, 1, 2):
                rates[f"{workers} workers"] = loader_rate(dataset, args.batch, workers, args.batches)
            rates["torchvision decode"] = decode_rate(files, torchvision_decode)
            rates["PIL decode"] = decode_rate(files, pil_decode)
            best = {k: max(v, best.get(k, 0.0)) for k, v in rates.items()}

    demand = best["step"]
    print(f"training step demand: {demand:.1f} pairs/s")
    for workers in (0, 1, 2):
        rate = best[f"{workers} workers"]
        print(f"loader, {workers} workers: {rate:.1f} pairs/s = {rate / demand:.2f}x the step's demand")
    tv, pil = best["torchvision decode"], best["PIL decode"]
    print(f"JPEG decode: torchvision {tv:.0f} photos/s, PIL {pil:.0f} photos/s, torchvision/PIL = {tv / pil:.2f}x")


if __name__ == "__main__":
    main()
