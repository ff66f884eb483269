"""example's options: each field is a flag of `mlscale run example` (`points` -> `--points`).
No framework import here: `mlscale --help` and `mlscale report` stay light."""

from __future__ import annotations

from dataclasses import dataclass

from mlscale.bench.config import opt


@dataclass
class ExampleConfig:
    points: int = opt(2048, "training points per rank (the test and inference sets are a quarter of it)", at_least=1)
    hidden: int = opt(32, "width of the hidden layer", at_least=1)
