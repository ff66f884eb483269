"""Projecting data-parallel throughput to node counts we cannot run, with an α–β model.

Model (data parallel, one gradient allreduce per step, no overlap with compute —
the conservative case):

    step(p)      = compute + allreduce(p, n)
    allreduce    = 2(p-1)·α + 2(p-1)/p · n/B        (ring allreduce: reduce-scatter + all-gather)
    throughput   = p · batch / step(p)               (weak scaling: fixed batch per rank)
    efficiency   = throughput(p) / (p · throughput(1))

where p is the number of ranks (nodes × GPUs per node), n the gradient size in
bytes (parameters × 4 for fp32 unless given), α the per-message latency and B
the bandwidth of the slowest link in the ring (the network once there is more
than one node). For strong scaling (fixed global batch G) the compute part
shrinks as batch per rank = G/p.

From measurements: `compute` is the per-step time of the 1-rank run (sum of
the per-phase means); the exposed allreduce cost at p ranks is step(p) − step(1)
of runs with the same batch per rank. `fit_network` turns those costs into α and
B (with one measured point α is taken as given and B solved for).

Never imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from mlscale.errors import UserError

BYTES_PER_PARAMETER = 4  # fp32 gradients
DEFAULT_NODES = tuple(2**i for i in range(11))  # 1 … 1024


@dataclass
class Network:
    """The interconnect assumed beyond what was measured."""

    bandwidth_gbps: float = 100.0  # link bandwidth, Gbit/s (e.g. one HDR InfiniBand port = 200)
    latency_us: float = 5.0  # per-message latency α, µs
    gpus_per_node: int = 4  # ranks per node

    @property
    def bytes_per_s(self) -> float:
        return self.bandwidth_gbps * 1e9 / 8

    @property
    def alpha_s(self) -> float:
        return self.latency_us * 1e-6


def ring_allreduce_time(p: int | np.ndarray, n_bytes: float, alpha_s: float, bytes_per_s: float) -> np.ndarray:
    """Seconds for a ring allreduce of n bytes over p ranks (0 for one rank)."""
    p = np.asarray(p, dtype=float)
    return np.where(p > 1, 2 * (p - 1) * alpha_s + 2 * (p - 1) / np.maximum(p, 1) * n_bytes / bytes_per_s, 0.0)


def fit_alpha_beta(points: Iterable[tuple[int, float, float]], latency_s: float | None = None) -> tuple[float, float]:
    """Least-squares fit of the ring model to measured allreduces (ranks, bytes, seconds):
    returns (α seconds, bandwidth bytes/s). With `latency_s` given, only the bandwidth is fitted
    (needed when all points share one message size and rank count)."""
    pts = [(float(p), float(n), float(t)) for p, n, t in points if p > 1]
    if not pts:
        raise UserError("scaling projection: need a measurement with more than one rank to fit the network")
    ps, ns, ts = (np.array(c) for c in zip(*pts, strict=True))
    x_alpha, x_beta = 2 * (ps - 1), 2 * (ps - 1) / ps * ns
    distinct = len({(p, n) for p, n, _ in pts})
    if latency_s is not None or distinct == 1:
        alpha = latency_s if latency_s is not None else 0.0
        inv_bw = float(np.sum((ts - x_alpha * alpha) * x_beta) / np.sum(x_beta**2))
    else:
        (alpha, inv_bw), *_ = np.linalg.lstsq(np.stack([x_alpha, x_beta], axis=1), ts, rcond=None)
        alpha = max(float(alpha), 0.0)
    # A cost at or below zero (communication fully hidden) means "faster than we can tell".
    return float(alpha), 1.0 / max(float(inv_bw), 1e-15)


def fit_network(costs: dict[int, float], n_bytes: float, latency_s: float | None = None) -> tuple[float, float]:
    """Fit (α, bandwidth) to the exposed allreduce cost per step {ranks: seconds} of runs whose
    gradient is `n_bytes`. With a single rank count, α must be given (`latency_s`)."""
    return fit_alpha_beta([(p, n_bytes, c) for p, c in costs.items()], latency_s)


def step_time(record: dict) -> float:
    """Per-step seconds of one run: the sum of its per-phase means (slowest-rank view)."""
    phases = record.get("phases") or {}
    means = [(s or {}).get("mean") for s in phases.values()]
    if not means or any(m is None for m in means):
        raise UserError(f"{record.get('run_dir', record.get('run_id'))}: record has no per-phase step times")
    return float(sum(means))


def gradient_bytes(record: dict, override: float | None = None) -> float:
    if override is not None:
        return float(override)
    params = (record.get("workload_info") or {}).get("parameters")
    if not params:
        raise UserError(
            f"{record.get('run_dir', record.get('run_id'))}: record has no workload_info.parameters; "
            "give the gradient size in bytes"
        )
    return float(params) * BYTES_PER_PARAMETER


@dataclass
class Projection:
    """Measured points, the fitted intra-node communication, and the projection table."""

    workload: str
    system: str
    batch_size: int
    compute_s: float
    grad_bytes: float
    network: Network
    measured: pd.DataFrame  # ranks, step_time, allreduce_s, imgs_per_s
    fit_alpha_s: float
    fit_bytes_per_s: float
    table: pd.DataFrame  # nodes, ranks, allreduce_s, step_time, imgs_per_s, efficiency, (strong_*)
    assumptions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["measured"] = self.measured.to_dict("records")
        out["table"] = self.table.to_dict("records")
        return out


def series_for_projection(records: list[dict]) -> dict[int, dict]:
    """One successful training run per rank count (the latest), all with the same workload/system/batch."""
    runs = [
        r for r in records if r.get("status", "ok") == "ok" and r.get("mode", "train") == "train" and r.get("phases")
    ]
    if not runs:
        raise UserError("scaling projection: no successful runs with per-phase times")
    keys = {(r["workload"], r.get("system"), r.get("batch_size")) for r in runs}
    if len(keys) > 1:
        raise UserError(
            "scaling projection: runs mix workloads/systems/batch sizes: "
            + ", ".join(f"{w}@{s} batch {b}" for w, s, b in sorted(keys, key=str))
        )
    by_ranks: dict[int, dict] = {}
    for r in sorted(runs, key=lambda r: r.get("started_at") or ""):
        by_ranks[int(r["num_ranks"])] = r
    return by_ranks


def project(
    records: list[dict],
    network: Network | None = None,
    nodes: tuple[int, ...] = DEFAULT_NODES,
    grad_bytes: float | None = None,
    global_batch: int | None = None,
) -> Projection:
    """Fit the model to a weak-scaling series of runs and project it to `nodes`."""
    network = network or Network()
    by_ranks = series_for_projection(records)
    if 1 not in by_ranks:
        raise UserError("scaling projection: needs a 1-rank run (it gives the compute time per step)")
    base = by_ranks[1]
    compute = step_time(base)
    n_bytes = gradient_bytes(base, grad_bytes)
    batch = int(base.get("batch_size") or 1)
    steps = {p: step_time(r) for p, r in sorted(by_ranks.items())}
    costs = {p: max(s - compute, 0.0) for p, s in steps.items()}
    measured = pd.DataFrame(
        {
            "ranks": list(steps),
            "step_time": list(steps.values()),
            "allreduce_s": [costs[p] for p in steps],
            "imgs_per_s": [p * batch / s for p, s in steps.items()],
        }
    )
    assumptions = [
        f"compute per step {compute * 1e3:.3g} ms (1-rank run, batch {batch} per rank), constant with scale",
        f"gradient {n_bytes / 1e6:.3g} MB allreduced once per step by a ring, not overlapped with compute",
        f"{network.gpus_per_node} ranks per node; network {network.bandwidth_gbps:g} Gbit/s, "
        f"latency {network.latency_us:g} µs per message between nodes",
    ]
    if len(costs) > 1:
        alpha, bw = fit_network(costs, n_bytes, latency_s=None if len(costs) > 2 else network.alpha_s)
        assumptions.append(
            f"measured communication path, fitted to the runs at {', '.join(str(p) for p in sorted(costs) if p > 1)} "
            "ranks: "
            f"{bw * 8 / 1e9:.3g} Gbit/s effective, latency {alpha * 1e6:.3g} µs"
        )
    else:
        alpha, bw = network.alpha_s, network.bytes_per_s
        assumptions.append("no multi-rank run measured: the network figures are used within a node too")
    nodes_arr = np.array(nodes, dtype=float)
    ranks = nodes_arr * network.gpus_per_node
    # One node: ranks talk through the measured path; more: the ring also crosses the network,
    # whose slower link (lower bandwidth, higher latency) sets the pace.
    inter_alpha, inter_bw = max(alpha, network.alpha_s), min(bw, network.bytes_per_s)
    ar = np.where(
        nodes_arr > 1,
        ring_allreduce_time(ranks, n_bytes, inter_alpha, inter_bw),
        ring_allreduce_time(ranks, n_bytes, alpha, bw),
    )
    step = compute + ar
    imgs = ranks * batch / step
    table = pd.DataFrame(
        {
            "nodes": nodes_arr.astype(int),
            "ranks": ranks.astype(int),
            "allreduce_s": ar,
            "step_time": step,
            "imgs_per_s": imgs,
            "efficiency": compute / step,
        }
    )
    if global_batch:
        per_rank = global_batch / ranks
        strong_step = compute * per_rank / batch + ar
        table["strong_imgs_per_s"] = global_batch / strong_step
        table["strong_efficiency"] = table["strong_imgs_per_s"] / (ranks * batch / compute)
        assumptions.append(f"strong scaling: global batch {global_batch}, compute proportional to batch per rank")
    return Projection(
        workload=base["workload"],
        system=base.get("system", ""),
        batch_size=batch,
        compute_s=compute,
        grad_bytes=n_bytes,
        network=network,
        measured=measured,
        fit_alpha_s=alpha,
        fit_bytes_per_s=bw,
        table=table,
        assumptions=assumptions,
    )


def predict_step(compute_s: float, ranks: int, n_bytes: float, alpha_s: float, bytes_per_s: float) -> float:
    """Per-step seconds the model predicts for `ranks` ranks on the fitted path."""
    return float(compute_s + ring_allreduce_time(ranks, n_bytes, alpha_s, bytes_per_s))
