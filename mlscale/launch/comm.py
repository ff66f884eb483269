"""Communicators: the few collective operations the harness needs.

A backend is one subclass of `Communicator` in `mlscale/launch/backends/`,
registered by its `name`; `create_communicator()` finds it there, so adding a
backend (Horovod, say) means adding one module, not editing this one.

Besides collectives on plain Python/numpy values (barrier, allreduce, gather,
broadcast, scatter of numpy buffers), a communicator carries the hooks the
training loop calls to make data-parallel training work on it: wrap the model,
wrap the optimizer, average gradients after backward, and start all ranks from
rank 0's parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from mlscale.errors import UserError
from mlscale.launch.env import RankEnv
from mlscale.registry import Registered, import_submodules

REDUCE_OPS = ("sum", "max", "min", "mean")
DEFAULT_TIMEOUT_S = 600.0


class Communicator(Registered):
    registry: ClassVar[dict[str, type[Communicator]]] = {}

    def __init__(
        self, env: RankEnv, device: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S, framework: str = "torch"
    ):
        self.env = env
        self.device = device
        self.timeout_s = timeout_s  # for backends whose collectives can time out (gloo)
        self.framework = framework  # the run's engine: a backend with a binding per framework picks one (Horovod)

    # -- identity -----------------------------------------------------------
    @property
    def rank(self) -> int:
        return self.env.rank

    @property
    def size(self) -> int:
        return self.env.size

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    # -- collectives (override in backends) ----------------------------------
    def barrier(self) -> None:
        raise NotImplementedError

    def allreduce(self, value: float | np.ndarray, op: str = "sum") -> float | np.ndarray:
        """Reduce a number or float64 array over ranks; every rank gets the result."""
        if op not in REDUCE_OPS:
            raise ValueError(f"unknown reduce op {op!r}")
        array = np.asarray(value, dtype=np.float64)
        out = self._allreduce_array(array, "sum" if op == "mean" else op)
        if op == "mean":
            out = out / self.size
        return float(out) if np.ndim(value) == 0 else out

    def _allreduce_array(self, array: np.ndarray, op: str) -> np.ndarray:
        raise NotImplementedError

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        """Gather picklable objects; the root gets a list in rank order, others None."""
        raise NotImplementedError

    def bcast(self, obj: Any, root: int = 0) -> Any:
        raise NotImplementedError

    def scatter_array(
        self, chunks: Sequence[np.ndarray] | None, root: int = 0, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Scatter equal-shaped numpy buffers: rank i gets chunks[i] from the root.

        Only the root passes `chunks` (one per rank, same shape and dtype; or one
        contiguous array whose first axis runs over the ranks); the shape travels
        first so other ranks can allocate their receive buffer. Ranks that already
        know it pass `out` (every rank, the same shape and dtype): then only the
        data travels, into `out`.
        """
        if out is None:
            if self.rank == root:
                if chunks is None or len(chunks) != self.size:
                    raise ValueError(f"scatter_array needs {self.size} chunks on the root")
                first = np.ascontiguousarray(chunks[0])
                if any(c.shape != first.shape or c.dtype != first.dtype for c in chunks):
                    raise ValueError("scatter_array chunks must share one shape and dtype")
                meta = (first.shape, first.dtype)  # a dtype object keeps structured fields
            else:
                meta = None
            shape, dtype = self.bcast(meta, root=root)
            out = np.empty(shape, dtype=np.dtype(dtype))
        # Buffers travel as raw bytes, so any dtype fits (structured voxel records too).
        send = None
        if self.rank == root:
            send = np.ascontiguousarray(chunks).reshape(self.size, -1).view(np.uint8)
            if send.shape[1] != out.nbytes:
                raise ValueError(f"scatter_array: chunks of {send.shape[1]} bytes into `out` of {out.nbytes}")
        self._scatter_into(send, out.reshape(-1).view(np.uint8), root)
        return out

    def _scatter_into(self, send: np.ndarray | None, out: np.ndarray, root: int) -> None:
        """Scatter rows of a [size, nbytes] uint8 array; rank i receives row i into `out`."""
        raise NotImplementedError

    # -- data-parallel training hooks (defaults: nothing to do) ---------------
    def wrap_model(self, model):
        return model

    def eval_with_root_buffers(self, model):
        """Evaluate with rank 0's buffers (batch-norm running statistics), as DDP does.

        DDP (broadcast_buffers=True) sends rank 0's buffers to every rank before each forward, so
        rank 0's buffers only ever see rank 0's batches and every rank evaluates with them. Backends
        without that leave each rank its own. Rank 0's buffers are the same either way, so one
        broadcast (`_broadcast_tensors`) on the first evaluation forward after training gives DDP's
        numbers at a fraction of its traffic. Backends call this from `wrap_model`.
        """
        buffers = [b for b in model.buffers() if b is not None]
        if not buffers or self.size == 1:
            return model
        stale = {"buffers": True}

        def before_forward(module, args):
            if module.training:
                stale["buffers"] = True
            elif stale["buffers"]:
                self._broadcast_tensors(buffers)
                stale["buffers"] = False

        model.register_forward_pre_hook(before_forward)
        return model

    def _broadcast_tensors(self, tensors: list) -> None:
        """Overwrite `tensors` on every rank with rank 0's values (backends that use eval_with_root_buffers)."""
        raise NotImplementedError

    def wrap_optimizer(self, optimizer, model):
        return optimizer

    def broadcast_parameters(self, model) -> None:
        """Make every rank start from rank 0's weights."""

    def after_backward(self, model) -> None:
        """Average gradients over ranks, for backends that do not do it themselves."""

    def close(self) -> None:
        pass


def backend_names() -> list[str]:
    import mlscale.launch.backends

    import_submodules(mlscale.launch.backends)
    return sorted(Communicator.registry)


def create_communicator(
    name: str, env: RankEnv, device: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S, framework: str = "torch"
) -> Communicator:
    """Backend `name` for this rank; `framework` is the engine's name ("torch", "tensorflow")."""
    names = backend_names()
    if name not in Communicator.registry:
        raise UserError(f"--backend {name!r} is not one of: {', '.join(names)}")
    return Communicator.registry[name](env, device, timeout_s=timeout_s, framework=framework)
