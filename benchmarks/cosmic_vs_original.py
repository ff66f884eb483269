"""cosmic-tagger's training step against the original CosmicTagger's, side by side in one process.

Both models hold the same weights (copied from ours) and train on the same batch: forward, focal loss,
backward and an Adam step. The original's form (benchmarks/reference/cosmic_original.py) applies its shared modules
to each plane in turn; ours runs with --plane-norm per-plane (the default) and, with --pooled, also with
the planes stacked in one batch. Rounds alternate which contender goes first, so a machine shared with
other work loads all of them alike; each round times --steps steps of each after one untimed warm-up step.

Configurations: `seed` is the issue's comparison: 640x1024 planes (the real sample file, 2x2 downsampled),
batch 1, 893,427 parameters; `small` is the quality run of docs/cosmic-tagger.md: 64x128 synthetic planes,
batch 8. Prints, per configuration and thread count, the median step time, CPU time and minor page faults
per step of each, the ratios original/ours of the median step time and of the CPU time per step (> 1: ours
is faster; on a loaded machine the CPU time is the steadier one) and the rounds ours won.

    OMP_NUM_THREADS=1 python benchmarks/cosmic_vs_original.py [--configs seed,small] [--threads 1,2]
        [--rounds 3] [--steps 1] [--pooled]
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tabulate import tabulate

from mlscale.io.larcv import LarcvFile, densify, densify_labels
from mlscale.workloads.cosmic_tagger.metrics import segmentation_loss
from mlscale.workloads.cosmic_tagger.model import UResNet, UResNetConfig
from mlscale.workloads.cosmic_tagger.synth import EventGenerator, SynthParams

HERE = Path(__file__).resolve().parent
REAL = HERE.parent / "tests" / "data" / "real" / "cosmic_tagging_light.h5"
_spec = importlib.util.spec_from_file_location("cosmic_original", HERE / "reference" / "cosmic_original.py")
original = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(original)

CONFIGS = {
    # The configuration (the original's flags: 8 filters, depth 4, 2/2/2 blocks, bottleneck 96).
    "seed": dict(
        n_initial_filters=8,
        network_depth=4,
        res_blocks_per_layer=2,
        res_blocks_deepest_layer=2,
        res_blocks_final=2,
        bottleneck_size=96,
    ),  # fmt: skip
    # docs/cosmic-tagger.md's quality run (the original always squeezes the deepest level: 96 channels).
    "small": dict(
        n_initial_filters=8,
        network_depth=3,
        res_blocks_per_layer=1,
        res_blocks_deepest_layer=1,
        res_blocks_final=1,
        bottleneck_size=96,
    ),  # fmt: skip
}


def batch_for(config: str) -> tuple[torch.Tensor, torch.Tensor]:
    if config == "seed":
        with LarcvFile(REAL) as f:
            x = densify(f.read("sbndwire", [0]), 2)
            y = densify_labels(f.read("sbnd_cosmicseg", [0]), 2)
    else:
        charge, labels = EventGenerator(SynthParams(shape=(64, 128), cosmics=2), seed=0).events(8)
        x, y = densify(charge), densify_labels(labels)
    return torch.from_numpy(x), torch.from_numpy(y).long()


@dataclass
class Contender:
    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    step_seconds: list[float]
    cpu_seconds: list[float]
    faults: list[float]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        out = self.model(x)
        if isinstance(out, tuple):  # the original's per-plane logits and loss
            loss = original.focal_loss(original.split_labels(y), out)
        else:
            loss = segmentation_loss(out, y, "focal")
        loss.backward()
        self.optimizer.step()

    def timed(self, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
        before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(steps):
            self.step(x, y)
        wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
        self.step_seconds.append(wall / steps)
        self.cpu_seconds.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / steps)
        self.faults.append((after.ru_minflt - before.ru_minflt) / steps)


def contenders(config: str, pooled: bool) -> list[Contender]:
    torch.manual_seed(0)
    ours = UResNet(UResNetConfig(**CONFIGS[config]))
    theirs = original.UResNet(ours.cfg)
    original.copy_weights(ours, theirs)
    models = [("original", theirs), ("mlscale", ours)]
    if pooled:
        stacked = UResNet(UResNetConfig(**CONFIGS[config], plane_norm="pooled"))
        stacked.load_state_dict(ours.state_dict())
        models.append(("mlscale pooled", stacked))
    return [Contender(n, m, torch.optim.Adam(m.parameters(), lr=3e-4), [], [], []) for n, m in models]


def compare(config: str, threads: int, rounds: int, steps: int, pooled: bool) -> list[list]:
    torch.set_num_threads(threads)
    x, y = batch_for(config)
    people = contenders(config, pooled)
    for c in people:
        c.step(x, y)  # warm-up: allocator, oneDNN kernels, Adam state
    for r in range(rounds):
        shift = r % len(people)
        for c in people[shift:] + people[:shift]:
            c.timed(x, y, steps)
    base = people[0]
    rows = []
    for c in people:
        ratio = statistics.median(base.step_seconds) / statistics.median(c.step_seconds)
        cpu_ratio = statistics.median(base.cpu_seconds) / statistics.median(c.cpu_seconds)
        won = sum(o < b for o, b in zip(c.step_seconds, base.step_seconds))
        rows.append([config, threads, c.name, statistics.median(c.step_seconds), statistics.median(c.cpu_seconds),
                     statistics.median(c.faults) / 1e3, "-" if c is base else f"{ratio:.3f}",
                     "-" if c is base else f"{cpu_ratio:.3f}", "-" if c is base else f"{won}/{rounds}"])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="seed,small", help="comma-separated: seed, small")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1, help="timed steps per contender and round")
    parser.add_argument("--pooled", action="store_true", help="also time ours with --plane-norm pooled")
    args = parser.parse_args()
    configs = args.configs.split(",")
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown:
        parser.error(f"--configs: unknown {', '.join(unknown)} (choose from {', '.join(CONFIGS)})")
    rows = []
    for config in configs:
        for threads in (int(t) for t in args.threads.split(",")):
            rows += compare(config, threads, args.rounds, args.steps, args.pooled)
            print(tabulate(rows[-2 - args.pooled :], floatfmt=".4g"), flush=True)
    headers = ["config", "threads", "model", "step s", "CPU s/step", "minor faults k/step", "speed original/this",
               "CPU original/this", "rounds faster"]  # fmt: skip
    print()
    print(tabulate(rows, headers=headers, floatfmt=".4g", tablefmt="github"))


if __name__ == "__main__":
    main()
