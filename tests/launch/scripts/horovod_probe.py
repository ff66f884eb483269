"""Exercise the horovod Communicator on every rank of a real 2-rank launch; print one RESULT line per rank.

Run by tests/launch/test_horovod_backend.py under `horovodrun -np 2` (MPI controller) and
`horovodrun --gloo -np 2` (Gloo controller, no MPI).
"""

from __future__ import annotations

import json

import numpy as np
import torch

from mlscale.launch.comm import create_communicator
from mlscale.launch.env import detect_environment


def flat(tensors) -> list[float]:
    return torch.cat([t.detach().double().reshape(-1) for t in tensors]).tolist()


def main() -> None:
    env = detect_environment()
    comm = create_communicator("horovod", env)
    r, n = comm.rank, comm.size
    out: dict = {"rank": r, "size": n, "launcher": env.launcher, "env_rank": env.rank}

    # -- collectives on host values
    out["sum"] = comm.allreduce(float(r + 1), "sum")
    out["mean"] = comm.allreduce(float(r + 1), "mean")
    out["max"] = comm.allreduce(np.array([r, -r], dtype=np.float64), "max").tolist()
    out["min"] = comm.allreduce(np.array([r, -r], dtype=np.float64), "min").tolist()
    out["gather"] = comm.gather({"rank": r, "host": env.hostname})
    out["bcast0"] = comm.bcast({"from": r})
    out["bcast1"] = comm.bcast(r * 10, root=1)
    record = np.dtype([("id", "<i4"), ("value", "<f8")])
    chunks = [np.array([(10 * i + j, i + j / 4) for j in range(3)], dtype=record) for i in range(n)] if r == 0 else None
    got = comm.scatter_array(chunks).view(record)  # the base class sends dtype.str, which drops field names
    out["scatter"] = [got["id"].tolist(), got["value"].tolist()]
    # The runner's inference pass runs inside torch.inference_mode(), and data loaders scatter there.
    with torch.inference_mode():
        ids = np.arange(n * 2, dtype=np.int64).reshape(n, 2)
        out["inference_scatter"] = comm.scatter_array(list(ids) if r == 0 else None).tolist()
        out["inference_sum"] = comm.allreduce(1.0, "sum")
    comm.barrier()

    # -- training hooks: every rank starts from rank 0's weights and buffers
    torch.manual_seed(100 + r)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    with torch.no_grad():
        model[1].running_mean.fill_(r + 1.0)
    comm.broadcast_parameters(model)
    out["state"] = flat(model.state_dict().values())

    # Local gradients on rank-specific data, for the test to average.
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(r))
    model(x).pow(2).mean().backward()
    out["local_grad"] = flat(p.grad for p in model.parameters())
    model.zero_grad(set_to_none=True)

    # A fresh optimizer with weight decay (rank 1 asks for another lr): wrapping takes rank 0's options and
    # neither moves the weights nor creates optimizer state.
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1 if r == 0 else 0.2, weight_decay=0.5)
    before = flat(model.parameters())
    optimizer = comm.wrap_optimizer(optimizer, model)
    out["moved_by_wrap"] = flat(model.parameters()) != before
    out["state_entries_after_wrap"] = len(optimizer.state_dict()["state"])
    out["lr"] = optimizer.param_groups[0]["lr"]

    model(x).pow(2).mean().backward()
    comm.after_backward(model)
    out["grad"] = flat(p.grad for p in model.parameters())
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    out["params_after_step"] = flat(model.parameters())
    out["adam_steps"] = [float(s["step"]) for s in optimizer.state.values()]

    # An optimizer that already has (rank-specific) state: wrapping broadcasts rank 0's.
    resumed = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for p in model.parameters():
        p.grad = torch.full_like(p, r + 1.0)
    resumed.step()
    resumed = comm.wrap_optimizer(resumed, model)
    out["momentum"] = flat(resumed.state[p]["momentum_buffer"] for p in model.parameters())

    comm.close()
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
