"""cloud-mask: PyTorch against TensorFlow, the same U-Net, data, ranks and batch on the same machine, in one
run; and the cache (the second epoch reads the patches kept in memory by the first).

    python benchmarks/cloud_mask_frameworks.py [--products 20] [--rows 256] [--columns 320] [--patch-size 64]
        [--batch-size 32] [--epochs 2] [--ranks 1] [--threads 2] [--rounds 2] [--infer-products 2]

Generates synthetic SLSTR products (`mlscale data cloud-mask`) and converts them (`mlscale cloud-mask
convert`), then, each round, trains with `mlscale run cloud-mask --framework torch` and `--framework tf` in
turn (interleaved, so load from other jobs falls on both alike), each followed by an inference pass over
`--infer-products` raw products (`--infer`), and reads the run records:
- img/s of epoch 1 (reading the HDF5 files), epoch 2 (from the cache) and inference, median over the
  rounds, and the ratio torch / TensorFlow of each (the goal: torch >= 1.0x);
- the cache: the data wait's share of a step's time in epoch 1 and 2 (summed over the epoch's steps,
  slowest rank; goal <= 2% in epoch 2) and the throughput of epoch 2 over epoch 1.
Each rank gets `--threads` CPU threads (OMP_NUM_THREADS; the TensorFlow engine takes it as its intra- and
inter-op threads). One rank runs `--backend single`; more run torch under DDP and TensorFlow under `mpi`
(its MultiWorkerMirroredStrategy; docs/cloud-mask.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "tf")


def mlscale(*args, ranks: int = 0, threads: int = 1) -> None:
    """One mlscale command, under mpirun when `ranks` is given."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "mlscale", *map(str, args)]
    if ranks:
        path = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
        cmd = [shutil.which("mpirun", path=path), "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
               "-np", str(ranks), "-x", "PYTHONPATH", "-x", "OMP_NUM_THREADS", *cmd]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def figures(run_dir: Path) -> dict[str, float]:
    """img/s per phase and the cache's figures, from a run's record.json and ranks.jsonl."""
    record = json.loads((run_dir / "record.json").read_text())
    ranks = [json.loads(line) for line in (run_dir / "ranks.jsonl").read_text().splitlines()]
    out = {f"epoch {e['epoch']} img/s": e["train_imgs_per_s"] for e in record["epoch_stats"]}
    out["inference img/s"] = record["inference"]["imgs_per_s"] if record["inference"] else float("nan")
    for i, epoch in enumerate(record["epoch_stats"][:2]):
        # the slowest rank's share: the data wait summed over the epoch's steps / its training time
        share = max(r["epochs"][i]["phase_totals"]["data_wait"] / r["epochs"][i]["train_time"] for r in ranks)
        out[f"epoch {epoch['epoch']} data wait %"] = 100 * share
    out["epoch 2 / epoch 1"] = out["epoch 2 img/s"] / out["epoch 1 img/s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=20, help="products generated (80%% train, 20%% test)")
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--columns", type=int, default=320)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--epochs", type=int, default=2, help="at least 2: epoch 2 reads from the cache")
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per rank")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--infer-products", type=int, default=2, help="raw products inferred after training (0: none)")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the cache shows from epoch 2)")
    # the seed's borders (15 and 40 pixels of 256) scaled to the patch: 4 and 10 of 64
    border, infer_border = args.patch_size // 16, 5 * args.patch_size // 32
    with tempfile.TemporaryDirectory(prefix="cloud_fw") as tmp:
        tmp = Path(tmp)
        mlscale("data", "cloud-mask", "--out", tmp / "data", "--products", args.products, "--rows", args.rows,
                "--columns", args.columns)  # fmt: skip
        mlscale("cloud-mask", "convert", tmp / "data" / "products", tmp / "hdf", "--no-progress", ranks=2)
        infer = tmp / "infer"
        infer.mkdir()
        for product in sorted((tmp / "data" / "products").glob("*.SEN3"))[: args.infer_products]:
            (infer / product.name).symlink_to(product)
        common = ["run", "cloud-mask", "--data", tmp / "hdf", "--patch-size", args.patch_size, "--loss-border",
                  border, "--infer-border", infer_border, "--batch-size", args.batch_size, "--epochs", args.epochs,
                  "--no-progress", "--out", tmp / "runs"]  # fmt: skip
        if args.infer_products:
            common += ["--infer", "--products", infer]
        rows = []
        for r in range(args.rounds):
            for fw in FRAMEWORKS:
                backend = "single" if args.ranks == 1 else {"torch": "ddp", "tf": "mpi"}[fw]
                run_id = f"{fw}-{r}"
                mlscale(*common, "--framework", fw, "--backend", backend, "--run-id", run_id, ranks=args.ranks,
                        threads=args.threads)  # fmt: skip
                rows.append({"framework": fw, "round": r, **figures(tmp / "runs" / run_id)})
    table = pd.DataFrame(rows)
    med = table.groupby("framework").median(numeric_only=True).drop(columns="round").T[list(FRAMEWORKS)]
    rates = [i for i in med.index if i.endswith("img/s")]
    med["torch / tf"] = med["torch"] / med["tf"]
    med.loc[~med.index.isin(rates), "torch / tf"] = float("nan")
    print(f"{args.products} products of {args.rows}x{args.columns}, {args.patch_size}-pixel patches, batch "
          f"{args.batch_size} per rank, {args.ranks} rank(s) x {args.threads} threads, {args.rounds} rounds "
          f"(medians), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(med.to_markdown(floatfmt=".3g"))
    print("each round:")
    print(table.to_markdown(index=False, floatfmt=".3g"))
    for phase in rates:
        print(f"torch / TensorFlow, {phase.removesuffix(' img/s')}: {med.loc[phase, 'torch / tf']:.2f}x (goal >= 1.0x)")
    for fw in FRAMEWORKS:
        print(f"the cache ({fw}): data wait {med.loc['epoch 1 data wait %', fw]:.2f}% of a step in epoch 1, "
              f"{med.loc['epoch 2 data wait %', fw]:.2f}% in epoch 2 (goal <= 2%); "
              f"epoch 2 / epoch 1 throughput {med.loc['epoch 2 / epoch 1', fw]:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
