"""Horovod's synthetic benchmark procedure vs mlscale's `synthetic` workload under --backend horovod.

Baseline: the procedure of Horovod's examples/pytorch/pytorch_synthetic_benchmark.py, written here from
its published description: a torchvision model on one random batch made once; SGD (lr 0.01 x size)
in hvd.DistributedOptimizer; parameters and optimizer state broadcast from rank 0; `num-warmup-batches`
untimed steps; then `num-iters` iterations of `num-batches-per-iter` steps, each timed with timeit;
img/s per iteration = batch x batches-per-iter / time; rank 0 reports mean +- 1.96 std, and the total
as rank 0's mean x size.

mlscale: `mlscale run synthetic --backend horovod` with the same ranks, per-rank batch, model and
number of timed steps (warm-up as --warmup-steps); its total is all ranks' samples over the slowest
rank's training time (record.json), and rank 0's rate x size (ranks.jsonl) is shown beside it.
`--gc python` runs mlscale with the interpreter's default garbage collection instead of its default
`freeze` policy: a full collection then stalls one step per epoch for 100-200 ms, which Horovod's
procedure never sees because timeit switches collection off while it times.

Both run under the same launcher (`mpirun -np R` by default), alternately, `--repeats` times; the
ratio (mlscale / Horovod, same way of totalling: rank 0's rate x size) uses the medians. Goal >= 0.99.
Separate launches differ in weights, data and the machine's load at the time, so a last launch measures
the loop overhead alone: Horovod's step and mlscale's training loop on the same model, optimizer and
batch, alternating in the same processes (`--paired-rounds`).

    python benchmarks/synthetic_vs_horovod.py --ranks 2 --model resnet18 --image-size 64 --batch-size 16
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--model", default="resnet18", help="torchvision model (resnet18/34/50/101/152)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=16, help="per rank")
    p.add_argument("--num-warmup-batches", type=int, default=5)
    p.add_argument("--num-batches-per-iter", type=int, default=5)
    p.add_argument("--num-iters", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3, help="alternating runs of each side")
    p.add_argument("--launcher", choices=("mpirun", "horovodrun-gloo"), default="mpirun")
    p.add_argument("--paired-rounds", type=int, default=8, help="rounds of the in-process A/B (0: skip it)")
    p.add_argument("--gc", default="freeze", help="mlscale's --gc policy (python: the interpreter's default)")
    p.add_argument("--worker", choices=("horovod", "paired"), help=argparse.SUPPRESS)  # one rank of a launch
    return p.parse_args(argv)


# -- the Horovod side: one rank ------------------------------------------------------------------


def horovod_step(args: argparse.Namespace):
    """Horovod's setup; returns its benchmark_step (zero_grad, forward, loss, backward, step)."""
    import horovod.torch as hvd
    import torch
    import torch.nn.functional as F
    from torchvision import models

    hvd.init()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", hvd.local_rank()) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    model = models.get_model(args.model, weights=None, num_classes=args.num_classes).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01 * hvd.size())
    optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters(), op=hvd.Average)
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)

    data = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    target = torch.randint(0, args.num_classes, (args.batch_size,), device=device)

    def benchmark_step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()

    return benchmark_step


def horovod_worker(args: argparse.Namespace) -> None:
    import horovod.torch as hvd
    import numpy as np

    benchmark_step = horovod_step(args)
    timeit.timeit(benchmark_step, number=args.num_warmup_batches)
    img_secs = []
    for _ in range(args.num_iters):
        seconds = timeit.timeit(benchmark_step, number=args.num_batches_per_iter)
        img_secs.append(args.batch_size * args.num_batches_per_iter / seconds)
    if hvd.rank() == 0:
        mean, conf = float(np.mean(img_secs)), float(1.96 * np.std(img_secs))
        size = hvd.size()
        # Beside Horovod's mean of per-iteration rates: rank 0's samples over its summed time, which is how
        # mlscale measures (a mean of rates exceeds samples/time when iterations vary).
        seconds = sum(args.batch_size * args.num_batches_per_iter / r for r in img_secs)
        rate = args.batch_size * args.num_batches_per_iter * len(img_secs) / seconds
        result = dict(img_secs=img_secs, mean=mean, conf=conf, size=size, total=size * mean, total_conf=size * conf)
        result["rank0_x_size"] = size * rate
        print("RESULT " + json.dumps(result), flush=True)
    hvd.shutdown()


def paired_worker(args: argparse.Namespace) -> None:
    """The loop overhead alone: Horovod's benchmark_step and mlscale's training loop (Trainer.train_steps)
    on the same model, optimizer and batch, in the same processes, alternating rounds of
    num-batches-per-iter steps. Launch-to-launch drift on a shared machine then hits both alike, and the
    two sides cannot differ by weights, data or memory layout, only by what the loops do around them."""
    import logging
    import statistics
    import time

    import horovod.torch as hvd
    import torch.nn.functional as F

    from mlscale.bench.config import RunConfig
    from mlscale.bench.timing import make_timer
    from mlscale.bench.workload import Context
    from mlscale.engines.torch import speedups
    from mlscale.engines.torch.engine import select_device
    from mlscale.engines.torch.steps import Trainer
    from mlscale.launch.comm import create_communicator
    from mlscale.launch.env import detect_environment
    from mlscale.workloads.synthetic.workload import Synthetic, SyntheticConfig

    env = detect_environment()
    comm = create_communicator("horovod", env)
    run = RunConfig(batch_size=args.batch_size, backend="horovod", progress=False)
    device = select_device("auto", env)
    ctx = Context(env, comm, device, run, logging.getLogger("bench"))
    n = args.num_batches_per_iter
    workload = Synthetic(SyntheticConfig(args.model, args.image_size, args.num_classes, steps_per_epoch=n), ctx)
    net = workload.build_model().to(device)
    comm.broadcast_parameters(net)
    net = comm.wrap_model(net)
    optimizer = comm.wrap_optimizer(workload.build_optimizer(net.parameters(), Synthetic.default_lr), net)
    trainer = Trainer(workload, ctx, net, optimizer, speedups.Precision(False, device))
    data = workload.build_data("train")
    images, labels = data.batch

    def benchmark_step():  # Horovod's step; the optimizer's step() does the allreduce wait itself
        optimizer.zero_grad()
        F.cross_entropy(net(images), labels).backward()
        optimizer.step()
        cuda_sync(device)

    def mlscale_block() -> float:
        timer = make_timer(device.type)
        t0 = time.perf_counter()
        trainer.train_steps(data, n, timer)
        cuda_sync(device)
        elapsed = time.perf_counter() - t0
        timer.epoch_end()
        return elapsed

    def horovod_block() -> float:
        return timeit.timeit(benchmark_step, number=n)

    for _ in range(max(1, args.num_warmup_batches // n)):
        horovod_block(), mlscale_block()
    times: dict[str, list[float]] = {"horovod": [], "mlscale": []}
    for i in range(args.paired_rounds):
        order = [("horovod", horovod_block), ("mlscale", mlscale_block)]
        for name, block in order if i % 2 == 0 else reversed(order):
            times[name].append(block())
    if hvd.rank() == 0:
        rate = {k: args.batch_size * n / statistics.median(v) for k, v in times.items()}
        paired = statistics.median(h / m for h, m in zip(times["horovod"], times["mlscale"]))
        result = {"rank0_rate": rate, "ratio": rate["mlscale"] / rate["horovod"], "paired_ratio": paired}
        print("RESULT " + json.dumps(result), flush=True)
    comm.close()


def cuda_sync(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


# -- the driver ----------------------------------------------------------------------------------------


def launch(args: argparse.Namespace, command: list[str]) -> str:
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_", "HOROVOD_"))}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    if args.launcher == "mpirun":
        flags = f"--allow-run-as-root --oversubscribe --bind-to none -np {args.ranks} -x PYTHONPATH -x OMP_NUM_THREADS"
        prefix = [shutil.which("mpirun", path=env["PATH"]), *flags.split()]
    else:
        prefix = [shutil.which("horovodrun", path=env["PATH"]), "--gloo", "-np", str(args.ranks)]
    proc = subprocess.run(prefix + [sys.executable, *command], capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(
            f"{' '.join(prefix + command)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    return proc.stdout


def run_worker(args: argparse.Namespace, worker: str) -> dict:
    keep = "model image_size num_classes batch_size num_warmup_batches num_batches_per_iter num_iters".split()
    flags = [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in keep]
    flags.append(f"--paired-rounds={args.paired_rounds}")
    out = launch(args, [str(Path(__file__).resolve()), f"--worker={worker}", *flags])
    line = next(line for line in out.splitlines() if "RESULT " in line)
    return json.loads(line.split("RESULT ", 1)[1])


def run_mlscale(args: argparse.Namespace) -> dict:
    steps = args.num_iters * args.num_batches_per_iter
    with tempfile.TemporaryDirectory(prefix="mlscale-bench-") as tmp:
        flags = (
            f"--backend horovod --model {args.model} --image-size {args.image_size} --num-classes {args.num_classes} "
            f"--batch-size {args.batch_size} --warmup-steps {args.num_warmup_batches} --steps-per-epoch {steps} "
            f"--test-steps 1 --epochs 1 --no-progress --run-id bench --gc {args.gc}"
        )
        launch(args, ["-m", "mlscale", "run", "synthetic", *flags.split(), "--out", tmp])
        run_dir = Path(tmp) / "bench"
        record = json.loads((run_dir / "record.json").read_text())
        ranks = [json.loads(line) for line in (run_dir / "ranks.jsonl").read_text().splitlines()]
    epoch = record["epoch_stats"][0]
    rank0 = next(r for r in ranks if r["rank"] == 0)["epochs"][0]
    rank0_rate = rank0["train_samples"] / rank0["train_time"]
    return {"total": epoch["train_imgs_per_s"], "rank0_x_size": rank0_rate * len(ranks)}


def main() -> None:
    args = parse_args()
    if importlib.util.find_spec("horovod") is None:
        sys.exit("synthetic_vs_horovod: horovod is not installed; build it with `make horovod`")
    if args.worker:
        {"horovod": horovod_worker, "paired": paired_worker}[args.worker](args)
        return
    print(
        f"{args.ranks} ranks via {args.launcher}, {args.model} {args.image_size}x{args.image_size}, "
        f"batch {args.batch_size}/rank, {args.num_warmup_batches} warm-up + {args.num_iters} x "
        f"{args.num_batches_per_iter} timed batches, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}"
    )
    hvd_runs, mls_runs = [], []
    for i in range(args.repeats):
        hvd_runs.append(run_worker(args, "horovod"))
        mls_runs.append(run_mlscale(args))
        h, m = hvd_runs[-1], mls_runs[-1]
        print(
            f"repeat {i + 1}: Horovod {h['total']:.1f} +-{h['total_conf']:.1f} img/s (rank 0 {h['mean']:.1f} "
            f"+-{h['conf']:.1f} x {h['size']}; rank 0 samples/time x size {h['rank0_x_size']:.1f}) | mlscale "
            f"rank 0 x size {m['rank0_x_size']:.1f}, samples/slowest rank {m['total']:.1f} img/s"
        )

    def median(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    hvd_total, hvd_time = median(hvd_runs, "total"), median(hvd_runs, "rank0_x_size")
    mls_rank0, mls_total = median(mls_runs, "rank0_x_size"), median(mls_runs, "total")
    paired = statistics.median(m["rank0_x_size"] / h["total"] for h, m in zip(hvd_runs, mls_runs))
    print(f"median over {args.repeats} repeats, img/s:")
    print(f"  Horovod, its way (rank 0 mean rate x size):  {hvd_total:.1f}")
    print(f"  Horovod, rank 0 samples/time x size:         {hvd_time:.1f}")
    print(f"  mlscale, rank 0 samples/time x size:         {mls_rank0:.1f}")
    print(f"  mlscale, all samples / slowest rank's time:  {mls_total:.1f}")
    print(f"ratio mlscale / Horovod (rank 0 x size, Horovod's way): {mls_rank0 / hvd_total:.3f}  (goal >= 0.99)")
    print(f"ratio mlscale / Horovod (both rank 0 samples/time x size): {mls_rank0 / hvd_time:.3f}")
    print(f"median of per-repeat ratios (Horovod's way): {paired:.3f}")
    if args.paired_rounds:
        both = run_worker(args, "paired")
        rate = both["rank0_rate"]
        print(
            f"loop overhead (same model/optimizer/batch, {args.paired_rounds} alternating rounds of "
            f"{args.num_batches_per_iter} steps), rank 0 img/s x {args.ranks}: "
            f"Horovod's step {rate['horovod'] * args.ranks:.1f}, mlscale loop "
            f"{rate['mlscale'] * args.ranks:.1f}; ratio {both['ratio']:.3f} (medians), "
            f"{both['paired_ratio']:.3f} (median of paired rounds)"
        )


if __name__ == "__main__":
    main()
