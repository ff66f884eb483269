"""Injected failures for the reliability tests (docs/reliability.md), off unless the variable is set.

    MLSCALE_TEST_FAIL_AT=RANK:setup    rank RANK stops at set-up with a user error (one line, exit 2)
    MLSCALE_TEST_FAIL_AT=RANK:epochN   rank RANK raises an exception when training epoch N starts
    MLSCALE_TEST_FAIL_AT=RANK:epochN/user   ... a user error there (bad data found mid-epoch)

They stand for an error found on one rank only (its own shard of the data, its own file system), the case
where a job used to hang: the other ranks wait in a collective for a peer that has left.
"""

from __future__ import annotations

import os

from mlscale.errors import UserError

VARIABLE = "MLSCALE_TEST_FAIL_AT"


def maybe_fail(rank: int, where: str) -> None:
    spec = os.environ.get(VARIABLE, "")
    target, _, point = spec.partition(":")
    point, _, kind = point.partition("/")
    if not spec or point != where or target != str(rank):
        return
    if where == "setup":
        raise UserError(f"{VARIABLE}={spec}: set-up error injected on rank {rank}")
    if kind == "user":
        raise UserError(f"{VARIABLE}={spec}: user error injected on rank {rank}")
    raise RuntimeError(f"{VARIABLE}={spec}: error injected on rank {rank}")
