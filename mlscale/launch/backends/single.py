"""One process, no communication: every collective is the identity."""

from __future__ import annotations

import numpy as np

from mlscale.errors import UserError
from mlscale.launch.comm import DEFAULT_TIMEOUT_S, Communicator


class SingleCommunicator(Communicator):
    name = "single"

    def __init__(self, env, device="cpu", timeout_s=DEFAULT_TIMEOUT_S, framework="torch"):
        if env.size != 1:
            raise UserError(
                f"--backend single runs one process, but the {env.launcher} launcher started {env.size}; "
                "use --backend ddp or mpi"
            )
        super().__init__(env, device, timeout_s, framework)

    def barrier(self):
        pass

    def _allreduce_array(self, array, op):
        return array.copy()

    def gather(self, obj, root=0):
        return [obj]

    def bcast(self, obj, root=0):
        return obj

    def _scatter_into(self, send, out, root):
        np.copyto(out, send[0])
