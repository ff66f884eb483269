"""Data-parallel TensorFlow across mlscale's ranks: `tf.distribute.MultiWorkerMirroredStrategy`
with a `TF_CONFIG` built from the rank environment.

Horovod's TensorFlow binding (the seed's choice) is not built here: Horovod 0.28.1's TF extension
does not compile against the TensorFlow releases that install beside torch 2.14 and numpy 2 (see
docs/cloud-mask.md). MultiWorkerMirroredStrategy needs one gRPC address per worker: each rank
takes a free port on its host, the ranks exchange them through mlscale's communicator, and every
rank gets the same cluster list with its own task index (what SlurmClusterResolver would build
under srun, for any launcher). The strategy must exist before TensorFlow runs its first op.
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
