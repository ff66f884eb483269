"""The workload kit's core pieces: batch sizes, batch trees, the registry, engines, and a runner
core that imports no framework."""

from __future__ import annotations

import subprocess
import sys
from collections import namedtuple

import pytest
import torch
from support.run import REPO, child_env

from mlscale.bench.batching import batch_sizes
from mlscale.bench.tree import first_leaf, leaves, map_leaves
from mlscale.errors import UserError
from mlscale.registry import DuplicateNameError, Registered

CORE = [
    "runner",
    "modes",
    "stats",
    "records",
    "rundir",
    "logs",
    "engine",
    "workload",
    "batching",
    "tree",
    "checkpoints",
]


def test_the_runner_core_imports_no_framework():
    code = (
        "import sys\n"
        + "".join(f"import mlscale.bench.{m}\n" for m in CORE)
        + "import mlscale.launch.devices\n"
        + "bad = sorted(m for m in ('torch', 'tensorflow', 'horovod') if m in sys.modules)\n"
        + "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), cwd=REPO)
    assert proc.returncode == 0, proc.stderr


def test_the_runner_core_passes_the_complexity_rules():
    ruff = [sys.executable, "-m", "ruff"]
    if subprocess.run([*ruff, "--version"], capture_output=True).returncode != 0:
        pytest.skip("ruff is not installed (make install brings it)")
    files = [str(REPO / "mlscale" / "bench" / f"{m}.py") for m in CORE]
    proc = subprocess.run(
        [*ruff, "check", "--no-cache", "--select", "C901,PLR0912,PLR0915", *files], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize(
    "batch, global_batch, ranks, expected",
    [(8, None, 4, (8, 32)), (32, 64, 4, (16, 64)), (32, 64, 1, (64, 64))],
)
def test_batch_sizes_follow_one_rule(batch, global_batch, ranks, expected):
    sizes = batch_sizes(batch, global_batch, ranks)
    assert (sizes.per_rank, sizes.global_size) == expected
    assert sizes.strong == (global_batch is not None)


@pytest.mark.parametrize(
    "batch, global_batch, ranks, message",
    [
        (0, None, 2, "--batch-size must be at least 1, got 0"),
        (8, 0, 2, "--global-batch-size must be at least 1, got 0"),
        (8, 5, 2, "--global-batch-size 5 does not divide by 2 ranks"),
        (8, 2, 4, "--global-batch-size 2 does not divide by 4 ranks"),
    ],
)
def test_batch_sizes_refuse_what_does_not_fit(batch, global_batch, ranks, message):
    with pytest.raises(UserError, match=message):
        batch_sizes(batch, global_batch, ranks)


Pair = namedtuple("Pair", "image target")


def test_batch_trees_of_any_nesting():
    batch = {"images": [1, 2], "targets": ({"boxes": 3}, Pair(4, 5))}
    doubled = map_leaves(lambda x: 2 * x, batch)
    assert doubled == {"images": [2, 4], "targets": ({"boxes": 6}, Pair(8, 10))}
    assert isinstance(doubled["targets"][1], Pair) and isinstance(doubled["images"], list)
    assert list(leaves(batch)) == [1, 2, 3, 4, 5] and first_leaf(batch) == 1


def test_torch_leaves_of_a_dict_batch():
    from mlscale.engines.torch import tree

    batch = {"image": torch.zeros(2, 3, 4, 5), "target": [{"mask": torch.ones(2, 4, 5, dtype=torch.uint8)}], "id": "x"}
    assert tree.nbytes(batch) == 2 * 3 * 4 * 5 * 4 + 2 * 4 * 5
    last = tree.to_channels_last(batch)
    assert last["image"].is_contiguous(memory_format=torch.channels_last)
    assert last["target"][0]["mask"].is_contiguous() and last["id"] == "x"
    static = tree.clone(batch)
    fresh = map_leaves(lambda x: x + 1 if isinstance(x, torch.Tensor) else x, batch)
    tree.copy_into(static, fresh)
    assert torch.equal(static["image"], fresh["image"]) and not torch.equal(static["image"], batch["image"])
    with pytest.raises(ValueError, match="batch keys changed"):
        tree.copy_into(static, {"image": batch["image"]})


def test_a_duplicate_name_is_refused_and_a_reimport_is_not():
    class Family(Registered):
        registry: dict = {}

    class First(Family):
        name = "same"

    with pytest.raises(DuplicateNameError, match="Family name 'same' is taken twice: by .*First and by .*Second"):
        type("Second", (Family,), {"name": "same", "__module__": First.__module__, "__qualname__": "Second"})
    again = type(
        "First", (Family,), {"name": "same", "__module__": First.__module__, "__qualname__": First.__qualname__}
    )
    assert Family.registry["same"] is again  # the same class defined again (a module re-imported) is fine


def test_an_unknown_engine_is_one_clear_error():
    from mlscale.bench.engine import get_engine

    with pytest.raises(UserError, match="unknown engine 'jax'"):
        get_engine("jax")
    assert get_engine("torch").name == "torch"
