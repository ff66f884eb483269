"""Data-parallel TensorFlow across mlscale's ranks, two ways:

- `--backend horovod`: Horovod's TensorFlow binding, as the seed trains (`HorovodSync`): the core
  binding with a custom loop (Keras 3 models are not supported by `horovod.tensorflow.keras`),
  gradients averaged by `hvd.DistributedGradientTape`, rank 0's variables broadcast after the first
  step (the optimizer's exist only from then on);
- `--backend mpi`: `tf.distribute.MultiWorkerMirroredStrategy` (`make_strategy`) with a `TF_CONFIG`
  built from the rank environment. The strategy needs one gRPC address per worker: each rank takes a
  free port on its host, the ranks exchange them through mlscale's communicator, and every rank gets
  the same cluster list with its own task index (what SlurmClusterResolver would build under srun,
  for any launcher). The strategy must exist before TensorFlow runs its first op.
"""

from __future__ import annotations

import json
import os
import socket

from mlscale.launch.comm import Communicator
from mlscale.launch.env import RankEnv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def tf_config(env: RankEnv, comm: Communicator) -> dict:
    """The TF_CONFIG of this rank: every rank's host:port, in rank order, and this rank's index."""
    host = "localhost" if env.num_nodes <= 1 else env.hostname
    workers = comm.gather(f"{host}:{free_port()}")
    workers = comm.bcast(workers)
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": comm.rank}}


def make_strategy(env: RankEnv, comm: Communicator):
    """None for one rank; else a MultiWorkerMirroredStrategy over the ranks (collective, every rank)."""
    if comm.size == 1:
        return None
    import tensorflow as tf

    os.environ["TF_CONFIG"] = json.dumps(tf_config(env, comm))
    options = tf.distribute.experimental.CommunicationOptions(implementation="RING")
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def tf_variables(variables) -> list:
    """The TensorFlow variables behind Keras 3's: Horovod keys gradients by `Variable.ref()` and names its
    collectives by the variables' names, which Keras 3's own variables do not offer."""
    return [getattr(v, "value", v) for v in variables]


class HorovodSync:
    """Gradient averaging and the start from rank 0's variables through `horovod.tensorflow`, which the
    horovod communicator has initialised (`hvd.init()`)."""

    def __init__(self):
        from mlscale.launch.backends.horovod import import_horovod

        self.hvd = import_horovod("tensorflow")
        self.broadcast_done = False

    def gradients(self, tape, loss, variables) -> list:
        """d loss / d variables averaged over ranks (`DistributedGradientTape`: allreduce, op Average)."""
        return self.hvd.DistributedGradientTape(tape).gradient(loss, tf_variables(variables))

    def after_step(self, model, optimizer) -> None:
        """After the first step, rank 0's model and optimizer variables to every rank (once)."""
        if not self.broadcast_done:
            self.hvd.broadcast_variables(tf_variables([*model.variables, *optimizer.variables]), root_rank=0)
            self.broadcast_done = True
