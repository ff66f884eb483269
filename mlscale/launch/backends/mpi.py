"""mpi4py: collectives over MPI; gradients averaged with one Allreduce per step."""

from __future__ import annotations

import numpy as np

from mlscale.launch.comm import DEFAULT_TIMEOUT_S, Communicator


class MpiCommunicator(Communicator):
    name = "mpi"

    def __init__(self, env, device="cpu", timeout_s=DEFAULT_TIMEOUT_S, framework="torch"):
        super().__init__(env, device, timeout_s, framework)
        from mpi4py import MPI

        self._mpi = MPI
        self.comm = MPI.COMM_WORLD
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
        self._grad_buffer: np.ndarray | None = None

    @property
    def rank(self):
        return self.comm.rank

    @property
    def size(self):
        return self.comm.size

    def barrier(self):
        self.comm.Barrier()

    def _allreduce_array(self, array, op):
        out = np.empty_like(array)
        self.comm.Allreduce(np.ascontiguousarray(array), out, op=self._ops[op])
        return out

    def gather(self, obj, root=0):
        return self.comm.gather(obj, root=root)

    def bcast(self, obj, root=0):
        return self.comm.bcast(obj, root=root)

    def _scatter_into(self, send, out, root):
        self.comm.Scatter(send, out, root=root)

    def broadcast_parameters(self, model):
        self._broadcast_tensors(list(model.parameters()) + list(model.buffers()))

    def wrap_model(self, model):
        return self.eval_with_root_buffers(model)

    def _broadcast_tensors(self, tensors):
        import torch

        with torch.no_grad():
            for tensor in tensors:
                host = tensor.detach().cpu().numpy().copy()
                self.comm.Bcast(host, root=0)
                tensor.copy_(torch.from_numpy(host))

    def after_backward(self, model):
        """Average all gradients with one flat Allreduce (host memory)."""
        import torch

        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads or self.size == 1:
            return
        flat = torch.cat([g.detach().reshape(-1).float().cpu() for g in grads]).numpy()
        if self._grad_buffer is None or self._grad_buffer.shape != flat.shape:
            self._grad_buffer = np.empty_like(flat)
        self.comm.Allreduce(flat, self._grad_buffer, op=self._mpi.SUM)
        averaged = torch.from_numpy(self._grad_buffer / self.size)
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(averaged[offset : offset + n].view_as(g))
            offset += n
