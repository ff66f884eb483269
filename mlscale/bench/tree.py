"""Batches of any nesting: tuples, lists and dicts of arrays or tensors.

A batch is a tree; its leaves are whatever the workload's data yields (tensors,
arrays, numbers, strings). Engines use `map_leaves` to move a batch to the device,
make its images channels_last, copy it into a CUDA graph's static tensors or count
its bytes, without knowing its shape. Framework-neutral: the leaf functions come
from the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def map_leaves(fn: Callable[[Any], Any], tree: Any) -> Any:
    """The same nesting with `fn` applied to every leaf (namedtuples keep their type)."""
    if isinstance(tree, dict):
        return type(tree)((k, map_leaves(fn, v)) for k, v in tree.items())
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(map_leaves(fn, v) for v in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(map_leaves(fn, v) for v in tree)
    return fn(tree)


def leaves(tree: Any) -> Iterator[Any]:
    """Every leaf, depth first, in order."""
    if isinstance(tree, dict):
        for v in tree.values():
            yield from leaves(v)
    elif isinstance(tree, (tuple, list)):
        for v in tree:
            yield from leaves(v)
    else:
        yield tree


def zip_leaves(fn: Callable[[Any, Any], None], a: Any, b: Any) -> None:
    """Call `fn(leaf_of_a, leaf_of_b)` over two trees of the same nesting."""
    if isinstance(a, dict):
        if a.keys() != b.keys():
            raise ValueError(f"batch keys changed: {sorted(a)} vs {sorted(b)}")
        for k in a:
            zip_leaves(fn, a[k], b[k])
    elif isinstance(a, (tuple, list)):
        if len(a) != len(b):
            raise ValueError(f"batch structure changed: {len(a)} vs {len(b)} parts")
        for x, y in zip(a, b):
            zip_leaves(fn, x, y)
    else:
        fn(a, b)


def first_leaf(tree: Any) -> Any:
    """The first leaf (the default sample count is its length)."""
    for leaf in leaves(tree):
        return leaf
    raise ValueError("empty batch")
