"""torch.distributed: gloo on CPU, nccl on GPU; the model is wrapped in DDP."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from mlscale.launch.comm import DEFAULT_TIMEOUT_S, Communicator


class DdpCommunicator(Communicator):
    name = "ddp"

    def __init__(self, env, device="cpu", timeout_s=DEFAULT_TIMEOUT_S, framework="torch"):
        super().__init__(env, device, timeout_s, framework)
        import torch
        import torch.distributed as dist

        self.torch, self.dist = torch, dist
        self.pg_backend = "nccl" if str(device).startswith("cuda") else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(
                backend=self.pg_backend,
                init_method=f"tcp://{env.master_addr}:{env.master_port}",
                rank=env.rank,
                world_size=env.size,
                timeout=timedelta(seconds=self.timeout_s),
            )
        # Object collectives and metric reductions run on gloo-compatible CPU
        # tensors unless the process group is nccl.
        self.coll_device = device if self.pg_backend == "nccl" else "cpu"

    def barrier(self):
        self.dist.barrier()

    def _allreduce_array(self, array, op):
        ops = {"sum": self.dist.ReduceOp.SUM, "max": self.dist.ReduceOp.MAX, "min": self.dist.ReduceOp.MIN}
        tensor = self.torch.from_numpy(np.array(array, dtype=np.float64)).to(self.coll_device)
        self.dist.all_reduce(tensor, op=ops[op])
        return tensor.cpu().numpy()

    def gather(self, obj, root=0):
        out = [None] * self.size if self.rank == root else None
        self.dist.gather_object(obj, out, dst=root)
        return out

    def bcast(self, obj, root=0):
        box = [obj]
        self.dist.broadcast_object_list(box, src=root)
        return box[0]

    def _scatter_into(self, send, out, root):
        torch = self.torch
        recv = torch.from_numpy(out).to(self.coll_device)
        parts = [torch.from_numpy(row).to(self.coll_device) for row in send] if send is not None else None
        self.dist.scatter(recv, parts, src=root)
        if recv.data_ptr() != out.ctypes.data:  # gloo on CPU received into `out` itself
            np.copyto(out, recv.cpu().numpy())

    def wrap_model(self, model):
        from torch.nn.parallel import DistributedDataParallel

        if str(self.device).startswith("cuda"):
            return DistributedDataParallel(model, device_ids=[self.torch.device(self.device).index])
        return DistributedDataParallel(model)

    def broadcast_parameters(self, model):
        pass  # DDP broadcasts rank 0's state when it wraps the model.

    def close(self):
        if self.dist.is_initialized():
            self.dist.destroy_process_group()
