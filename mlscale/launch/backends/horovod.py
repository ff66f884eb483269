"""Horovod: collectives and gradient averaging through `horovod.torch`, or `horovod.tensorflow` for
the TensorFlow engine (which averages its gradients itself, with `hvd.DistributedGradientTape`).

Works under `mpirun` (Horovod's MPI controller) and under `horovodrun --gloo`
(Gloo controller, no MPI): Horovod picks the controller from how it was started,
and rank and size come from Horovod itself, not from the launcher's variables.

Horovod is built from source (`make horovod`, docs/horovod.md); without it
`--backend horovod` stops with a one-line error.
"""

from __future__ import annotations

import contextlib
import importlib

import numpy as np

from mlscale.errors import UserError
from mlscale.launch.comm import DEFAULT_TIMEOUT_S, Communicator

BINDINGS = {"torch": "horovod.torch", "tensorflow": "horovod.tensorflow"}  # engine name -> Horovod module


def import_horovod(framework: str = "torch"):
    """Horovod's binding for an engine, or a one-line error."""
    module = BINDINGS.get(framework)
    if module is None:
        raise UserError(f"--backend horovod: no Horovod binding for the {framework} engine")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = (str(exc) or type(exc).__name__).splitlines()[0]  # Horovod's own message goes on for lines
        hint = "build it with `make horovod`"
        raise UserError(f"--backend horovod: {module} is not importable ({why}); {hint}") from None


class _TorchTensors:
    """numpy in and out of horovod.torch's collectives."""

    def __init__(self):
        import torch

        self.torch = torch

    def tensor(self, array: np.ndarray):
        return self.torch.from_numpy(array)

    def int32(self, values: list[int]):
        return self.torch.tensor(values, dtype=self.torch.int32)

    def outside_inference(self):
        """Horovod fills its output tensors on its background thread, where torch's thread-local
        inference mode is off; tensors made inside `torch.inference_mode()` (the runner's inference
        pass, where a data loader may scatter) would then refuse the write. Make them normal tensors."""
        return self.torch.inference_mode(False)


class _TensorFlowTensors:
    """numpy in and out of horovod.tensorflow's collectives (eager)."""

    def __init__(self):
        import tensorflow as tf

        self.tf = tf

    def tensor(self, array: np.ndarray):
        return self.tf.constant(array)

    def int32(self, values: list[int]):
        return self.tf.constant(values, dtype=self.tf.int32)

    def outside_inference(self):
        return contextlib.nullcontext()


class HorovodCommunicator(Communicator):
    name = "horovod"

    def __init__(self, env, device="cpu", timeout_s=DEFAULT_TIMEOUT_S, framework="torch"):
        super().__init__(env, device, timeout_s, framework)
        self.hvd = hvd = import_horovod(framework)
        self.tensors = _TorchTensors() if framework == "torch" else _TensorFlowTensors()
        hvd.init()
        self._ops = {"sum": hvd.Sum, "max": hvd.Max, "min": hvd.Min}
        # Horovod names every collective; ranks must issue the same names in the same order.
        self._calls = 0
        self._optimizer = None
        self._synchronized_early = False

    def _outside_inference(self):
        return self.tensors.outside_inference()

    def _name(self, what: str) -> str:
        self._calls += 1
        return f"mlscale.{what}.{self._calls}"

    # -- identity: Horovod's own view of the job --------------------------------
    @property
    def rank(self):
        return self.hvd.rank()

    @property
    def size(self):
        return self.hvd.size()

    # -- collectives -------------------------------------------------------------
    def barrier(self):
        if hasattr(self.hvd, "barrier"):
            self.hvd.barrier()
        else:  # horovod.tensorflow has none: an allreduce returns only once every rank has joined it
            self._allreduce_array(np.zeros(1), "sum")

    def _allreduce_array(self, array, op):
        with self._outside_inference():
            tensor = self.tensors.tensor(np.array(array, dtype=np.float64))
            out = self.hvd.allreduce(tensor, op=self._ops[op], name=self._name("allreduce"))
        return np.asarray(out.numpy())

    def gather(self, obj, root=0):
        # Horovod has no object gather; allgather costs the same at our sizes (records, summaries).
        with self._outside_inference():
            objs = self.hvd.allgather_object(obj, name=self._name("gather"))
        return objs if self.rank == root else None

    def bcast(self, obj, root=0):
        with self._outside_inference():
            return self.hvd.broadcast_object(obj, root_rank=root, name=self._name("bcast"))

    def _scatter_into(self, send, out, root):
        # alltoall with per-destination splits: the root sends chunk i to rank i, the others send
        # nothing. Raw bytes, so any numpy dtype (structured records too) travels unchanged.
        nbytes = out.nbytes
        with self._outside_inference():
            if send is not None:
                payload = self.tensors.tensor(np.ascontiguousarray(send).reshape(-1).view(np.uint8))
                splits = self.tensors.int32([nbytes] * self.size)
            else:
                payload = self.tensors.tensor(np.empty(0, dtype=np.uint8))
                splits = self.tensors.int32([0] * self.size)
            received = self.hvd.alltoall(payload, splits=splits, name=self._name("scatter"))
        if isinstance(received, tuple):  # (tensor, received_splits) in Horovod >= 0.21
            received = received[0]
        np.copyto(out.reshape(-1).view(np.uint8), received.numpy())

    # -- data-parallel training ----------------------------------------------------
    def wrap_model(self, model):
        return self.eval_with_root_buffers(model)

    def _broadcast_tensors(self, tensors):
        with self._outside_inference():
            self.hvd.broadcast_parameters([(f"buffer.{i}", t) for i, t in enumerate(tensors)], root_rank=0)

    def broadcast_parameters(self, model):
        """Rank 0's parameters and buffers (state_dict: batch-norm statistics too) to every rank."""
        self.hvd.broadcast_parameters(model.state_dict(), root_rank=0)

    def wrap_optimizer(self, optimizer, model):
        hvd = self.hvd
        state = optimizer.state_dict()
        wrapped = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters(), op=hvd.Average)
        # DistributedOptimizer builds a new optimizer from the param groups: carry over any state.
        if state["state"]:
            wrapped.load_state_dict(state)
            hvd.broadcast_optimizer_state(wrapped, root_rank=0)
        else:
            # A fresh optimizer: hvd.broadcast_optimizer_state would first take a step with zero
            # gradients to create its state, which moves weights under weight decay and counts one
            # Adam step more than DDP does. There is no state yet, so only the options travel.
            groups = hvd.broadcast_object(
                [{k: v for k, v in g.items() if k != "params"} for g in wrapped.param_groups],
                root_rank=0,
                name=self._name("optimizer_options"),
            )
            for group, options in zip(wrapped.param_groups, groups):
                group.update(options)
        self._patch_optimizer(wrapped)
        self._optimizer = wrapped
        return wrapped

    def _patch_optimizer(self, opt) -> None:
        """Adapt Horovod 0.28's optimizer to the torch 2 loop.

        - `zero_grad(set_to_none=...)`: Horovod's takes no arguments.
        - `after_backward` waits for the gradient allreduces (so loss scaling and clipping see
          averaged gradients); the following `step()` must then not allreduce a second time.
        """
        hvd_zero_grad, hvd_step = opt.zero_grad, opt.step

        def zero_grad(set_to_none: bool = True):
            if opt._handles:
                return hvd_zero_grad()  # raises Horovod's "zero_grad before step" error
            return super(type(opt), opt).zero_grad(set_to_none=set_to_none)

        def step(closure=None):
            if not self._synchronized_early:
                return hvd_step(closure)
            self._synchronized_early = False
            with opt.skip_synchronize():
                return hvd_step(closure)

        opt.zero_grad, opt.step = zero_grad, step

    def after_backward(self, model):
        if self._optimizer is not None and self.size > 1:
            self._optimizer.synchronize()
            self._synchronized_early = True

    def close(self):
        # hvd.shutdown() finalizes MPI only if Horovod initialised it; mpi4py's atexit handles the rest.
        self.hvd.shutdown()
