"""The TensorFlow engine: the CPU or one GPU per local rank, a Keras model trained by a custom loop
(`steps`), data parallel over ranks (`distribute`) with Horovod's TensorFlow binding
(`--backend horovod`) or MultiWorkerMirroredStrategy (`--backend mpi`), weights in HDF5 (`weights`).

The runner's own collectives (statistics, records) go through mlscale's communicator: Horovod's
under `--backend horovod`, mpi4py under `mpi`; `single` is one rank. DDP is torch's and is refused;
so are torch's speed-up switches, which have no TensorFlow counterpart here.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import tensorflow as tf

from mlscale.bench.config import RunConfig
from mlscale.bench.engine import Engine
from mlscale.bench.timing import StepTimer
from mlscale.engines.tensorflow import distribute, weights
from mlscale.engines.tensorflow.steps import Steps
from mlscale.errors import UserError
from mlscale.launch.devices import DeviceChoice, pick_device
from mlscale.launch.env import RankEnv

BACKENDS = ("single", "mpi", "horovod")


def tf_device_name(device: DeviceChoice) -> str:
    return "/GPU:0" if device.type == "cuda" else "/CPU:0"  # one GPU is made visible per rank


class TensorFlowEngine(Engine):
    name = "tensorflow"

    @classmethod
    def select_device(cls, choice: str, env: RankEnv) -> DeviceChoice:
        gpus = len(tf.config.list_physical_devices("GPU")) if choice != "cpu" else 0
        return pick_device(choice, env.local_rank, gpus)

    @classmethod
    def check_supported(cls, run: RunConfig, device: DeviceChoice) -> None:
        if run.backend not in BACKENDS:
            raise UserError(
                f"--backend {run.backend}: the tensorflow engine runs with --backend horovod, mpi or single"
            )
        for flag in ("amp", "channels_last", "compile", "cuda_graphs"):
            if getattr(run, flag):
                raise UserError(f"--{flag.replace('_', '-')}: a torch switch, not supported by the tensorflow engine")

    @classmethod
    def prepare(cls, run: RunConfig, device: DeviceChoice) -> None:
        gpus = tf.config.list_physical_devices("GPU")
        visible = [gpus[device.index]] if device.type == "cuda" else []
        tf.config.set_visible_devices(visible, "GPU")
        for gpu in visible:
            tf.config.experimental.set_memory_growth(gpu, True)
        threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        if threads:  # as torch does: OMP_NUM_THREADS bounds the CPU threads of a rank
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.random.set_seed(run.seed)
        np.random.seed(run.seed)

    @classmethod
    def model_facts(cls, model) -> dict:
        count = int(sum(np.prod(v.shape) for v in model.weights))
        trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
        return {"parameters": count, "trainable_parameters": trainable}

    def setup(self, lr: float) -> dict:
        run, wl = self.ctx.run, self.workload
        comm = self.ctx.comm
        # Horovod averages gradients in the step; otherwise a strategy, made before any other TF op.
        self.horovod = distribute.HorovodSync() if comm.name == "horovod" else None
        self.strategy = None if self.horovod else distribute.make_strategy(self.ctx.env, comm)
        scope = self.strategy.scope() if self.strategy else contextlib.nullcontext()
        with tf.device(tf_device_name(self.ctx.device)), scope:
            model = wl.build_model()
            if run.weights:
                arrays, meta = weights.read_weights(run.weights)
                wl.check_checkpoint(meta, run.weights)
                weights.load_weights(model, arrays, run.weights)
            optimizer = wl.build_optimizer(model.trainable_variables, lr)
        self.model = model
        self.steps = Steps(wl, self.ctx, model, optimizer, self.strategy, self.horovod)
        return {"parameters": self.model_facts(model)["parameters"]}

    def make_timer(self, phases: tuple[str, ...]) -> StepTimer:
        return StepTimer(phases)  # host clock: each step ends by reading its loss

    def train_steps(self, data, steps, timer, desc="train", control=None):
        return self.steps.train_steps(data, steps, timer, desc, control)

    def eval_steps(self, data, steps, timer, desc, split):
        return self.steps.eval_steps(data, steps, timer, desc, split)

    def io_steps(self, data, steps, timer):
        return self.steps.io_steps(data, steps, timer)

    def save_weights(self, path: str) -> None:
        weights.save_weights(self.model, path, self.workload.checkpoint_meta())
