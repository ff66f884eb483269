"""cloud-mask: PyTorch against TensorFlow, the same U-Net, data, ranks and batch on the same machine, in one
run; and the cache (the second epoch reads the patches kept in memory by the first).

    python benchmarks/cloud_mask_frameworks.py [--products 20] [--rows 256] [--columns 320] [--patch-size 64]
        [--batch-size 32] [--epochs 2] [--ranks 1] [--threads 2] [--rounds 2] [--infer-products 2] [--tf-horovod]

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
(its MultiWorkerMirroredStrategy; docs/cloud-mask.md), and with `--tf-horovod` TensorFlow under Horovod's
TensorFlow binding as well ("tf horovod"; "tf horovod yield" with OMPI_MCA_mpi_yield_when_idle=1 and
"tf horovod cycle10" with HOROVOD_CYCLE_TIME=10; each also shown as a ratio to "tf").
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
# contender -> (--framework, --backend over several ranks, extra environment). "torch passive" (--passive-torch):
# torch with its OpenMP threads sleeping instead of spinning when idle, which matters where other jobs share the
# cores; "tf horovod" (--tf-horovod): TensorFlow under Horovod's TensorFlow binding instead of the strategy, and
# "tf horovod yield" the same with Open MPI yielding the core while Horovod's background thread waits, "tf horovod
# cycle10" with Horovod negotiating every 10 ms instead of 1 (research/horovod_idle_cpu.py)
CONTENDERS = {
    "torch": ("torch", "ddp", {}),
    "torch passive": ("torch", "ddp", {"OMP_WAIT_POLICY": "PASSIVE"}),
    "tf": ("tf", "mpi", {}),
    "tf horovod": ("tf", "horovod", {}),
    "tf horovod yield": ("tf", "horovod", {"OMPI_MCA_mpi_yield_when_idle": "1"}),
    "tf horovod cycle10": ("tf", "horovod", {"HOROVOD_CYCLE_TIME": "10"}),
}


def mlscale(*args, ranks: int = 0, threads: int = 1, extra_env: dict | None = None) -> None:
    """One mlscale command, under mpirun when `ranks` is given."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads), **(extra_env or {})}
    cmd = [sys.executable, "-m", "mlscale", *map(str, args)]
    if ranks:
        path = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
        cmd = [shutil.which("mpirun", path=path), "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
               "-np", str(ranks), *(a for k in ("PYTHONPATH", "OMP_NUM_THREADS", *(extra_env or {}))
                                    for a in ("-x", k)), *cmd]  # fmt: skip
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
    parser.add_argument("--passive-torch", action="store_true", help="also torch with OMP_WAIT_POLICY=PASSIVE")
    parser.add_argument("--tf-horovod", action="store_true", help="also TensorFlow under --backend horovod")
    args = parser.parse_args()
    wanted = {"torch passive": args.passive_torch, **{n: args.tf_horovod for n in CONTENDERS if "horovod" in n}}
    names = [n for n in CONTENDERS if wanted.get(n, True)]
    if args.tf_horovod and args.ranks < 2:
        parser.error("--tf-horovod needs --ranks 2 or more (one rank runs --backend single)")
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the cache shows from epoch 2)")
    # the seed's borders (15 and 40 pixels of 256) scaled to the patch: 4 and 10 of 64
    border, infer_border = args.patch_size // 16, 5 * args.patch_size // 32
    load_before = os.getloadavg()[0]
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
            for i, name in enumerate(names):
                fw, backend, extra_env = CONTENDERS[name]
                backend = "single" if args.ranks == 1 else backend
                run_id = f"{i}-{r}"
                mlscale(*common, "--framework", fw, "--backend", backend, "--run-id", run_id, ranks=args.ranks,
                        threads=args.threads, extra_env=extra_env)  # fmt: skip
                rows.append({"contender": name, "round": r, **figures(tmp / "runs" / run_id)})
    table = pd.DataFrame(rows)
    med = table.groupby("contender").median(numeric_only=True).drop(columns="round").T[names]
    rates = [i for i in med.index if i.endswith("img/s")]
    others = [n for n in names if n != "tf"]
    for name in others:
        med[f"{name} / tf"] = (med[name] / med["tf"]).where(med.index.isin(rates))
    print(f"{args.products} products of {args.rows}x{args.columns}, {args.patch_size}-pixel patches, batch "
          f"{args.batch_size} per rank, {args.ranks} rank(s) x {args.threads} threads, {args.rounds} rounds "
          f"(medians), {os.cpu_count()} CPUs, load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")  # fmt: skip
    print(med.to_markdown(floatfmt=".3g"))
    print("each round:")
    print(table.to_markdown(index=False, floatfmt=".3g"))
    for name in others:
        for phase in rates:
            ratio = med.loc[phase, f"{name} / tf"]
            goal = " (goal >= 1.0x)" if name.startswith("torch") else ""
            print(f"{name} / TensorFlow, {phase.removesuffix(' img/s')}: {ratio:.2f}x{goal}")
    for name in names:
        print(f"the cache ({name}): data wait {med.loc['epoch 1 data wait %', name]:.2f}% of a step in epoch 1, "
              f"{med.loc['epoch 2 data wait %', name]:.2f}% in epoch 2 (goal <= 2%); "
              f"epoch 2 / epoch 1 throughput {med.loc['epoch 2 / epoch 1', name]:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
