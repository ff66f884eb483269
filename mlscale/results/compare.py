"""Checking runs against reference values, ReFrame style.

A reference file (YAML) maps workload → system → rank count → metric →
`[value, lower, upper]`, where `lower` and `upper` are relative bounds
(fractions of the value; `null` means unbounded), as in ReFrame's
`reference` dictionaries:

    synthetic:
      pearl:
        8:
          imgs_per_s: [1300, -0.05, null]   # at most 5% slower; faster is fine
          total_time: [560, null, 0.10]     # at most 10% longer
      "*":                                  # any other system
        "*":                                # any rank count
          test_accuracy: [0.85, -0.02, 0.02]

A measured value passes when `value + |value|·lower ≤ measured ≤ value + |value|·upper`.
The metrics a run offers are listed by `run_metrics`.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlscale.errors import UserError

WILDCARD = "*"


def run_metrics(record: dict) -> dict[str, float]:
    """Named numbers of one run that references can bound (absent ones are left out)."""
    epochs = record.get("epoch_stats") or []
    out: dict[str, Any] = {
        "total_time": record.get("total_time"),
        "setup_time": record.get("setup_time"),
        "train_accuracy": record.get("train_accuracy"),
        "test_accuracy": record.get("test_accuracy"),
        "train_loss": record.get("train_loss"),
        "test_loss": record.get("test_loss"),
        "energy_per_sample_j": record.get("energy_per_sample_j"),
    }
    if epochs:
        last = epochs[-1]
        out["imgs_per_s"] = last.get("train_imgs_per_s")  # the table's second-epoch (steady) rate
        out["imgs_per_s_first_epoch"] = epochs[0].get("train_imgs_per_s")
        out["epoch_time"] = last.get("wall_time")
        out["train_time"] = last.get("train_time")
        out["test_time"] = last.get("test_time")
    if record.get("inference"):
        out["inference_imgs_per_s"] = record["inference"].get("imgs_per_s")
        out["inference_time"] = record["inference"].get("total_time")
    phases = record.get("phases") or {}
    for phase, stats in phases.items():
        out[f"{phase}_time"] = (stats or {}).get("mean")
    means = [(s or {}).get("mean") for s in phases.values()]
    if means and all(m is not None for m in means):
        out["step_time"] = sum(means)
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass
class Check:
    run: str
    workload: str
    system: str
    ranks: int
    metric: str
    measured: float | None
    reference: float
    lower: float | None
    upper: float | None

    @property
    def low_bound(self) -> float:
        return -math.inf if self.lower is None else self.reference + abs(self.reference) * self.lower

    @property
    def high_bound(self) -> float:
        return math.inf if self.upper is None else self.reference + abs(self.reference) * self.upper

    @property
    def passed(self) -> bool:
        return self.measured is not None and self.low_bound <= self.measured <= self.high_bound

    @property
    def message(self) -> str:
        if self.measured is None:
            return f"{self.metric}: the run has no value for it"
        deviation = (self.measured - self.reference) / abs(self.reference) if self.reference else math.nan
        verdict = "within" if self.passed else "outside"
        return (
            f"{self.metric} = {self.measured:.6g} ({deviation:+.1%} vs reference {self.reference:.6g}), "
            f"{verdict} [{self.low_bound:.6g}, {self.high_bound:.6g}]"
        )


def load_references(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such reference file")
    try:
        refs = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(refs, dict):
        raise UserError(f"{path}: expected workload: system: ranks: metric: [value, lower, upper]")
    for workload, systems in refs.items():
        for system, by_ranks in _mapping(path, systems, f"{workload}").items():
            for ranks, metrics in _mapping(path, by_ranks, f"{workload}.{system}").items():
                where = f"{workload}.{system}.{ranks}"
                if ranks != WILDCARD and not isinstance(ranks, int):
                    raise UserError(f"{path}: {where}: rank count must be an integer or '*'")
                for metric, triple in _mapping(path, metrics, where).items():
                    _validate_triple(path, f"{where}.{metric}", triple)
    return refs


def _mapping(path: Path, value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{path}: {where}: expected a mapping, got {type(value).__name__}")
    return value


def _validate_triple(path: Path, where: str, triple: Any) -> None:
    ok = isinstance(triple, list) and len(triple) == 3 and isinstance(triple[0], (int, float))
    ok = ok and all(b is None or isinstance(b, (int, float)) for b in triple[1:])
    if not ok:
        raise UserError(f"{path}: {where}: expected [value, lower, upper] (bounds are fractions or null)")
    lower, upper = triple[1], triple[2]
    if (lower is not None and lower > 0) or (upper is not None and upper < 0):
        raise UserError(f"{path}: {where}: lower bound must be <= 0 and upper bound >= 0 (relative), got {triple}")


def references_for(refs: dict, workload: str, system: str, ranks: int) -> dict[str, list]:
    """The metric bounds that apply to one run: exact keys override wildcards."""
    found: dict[str, list] = {}
    for w in (WILDCARD, workload):
        systems = refs.get(w) or {}
        for s in (WILDCARD, system):
            by_ranks = systems.get(s) or {}
            for r in (WILDCARD, ranks):
                found.update(by_ranks.get(r) or {})
    return found


def check_record(record: dict, refs: dict) -> list[Check]:
    workload, system, ranks = record.get("workload", ""), record.get("system", ""), int(record.get("num_ranks", 1))
    measured = run_metrics(record)
    name = record.get("run_id") or str(record.get("run_dir", "?"))
    return [
        Check(name, workload, system, ranks, metric, measured.get(metric), float(v), lo, hi)
        for metric, (v, lo, hi) in sorted(references_for(refs, workload, system, ranks).items())
    ]


def junit_xml(checks: list[Check], unreferenced: list[str]) -> bytes:
    """JUnit XML: one test suite per run, one test case per metric."""
    suites = ET.Element("testsuites", name="mlscale compare")
    by_run: dict[str, list[Check]] = {}
    for c in checks:
        by_run.setdefault(c.run, []).append(c)
    for run in unreferenced:
        by_run.setdefault(run, [])
    for run, run_checks in by_run.items():
        failures = sum(not c.passed for c in run_checks)
        suite = ET.SubElement(
            suites, "testsuite", name=run, tests=str(len(run_checks)), failures=str(failures), errors="0"
        )
        if not run_checks:
            case = ET.SubElement(suite, "testcase", classname=run, name="references")
            ET.SubElement(case, "skipped", message="no reference for this workload/system/ranks")
        for c in run_checks:
            case = ET.SubElement(
                suite, "testcase", classname=f"{c.workload}.{c.system}.{c.ranks}", name=f"{run}.{c.metric}"
            )
            if not c.passed:
                ET.SubElement(case, "failure", message=c.message, type="regression").text = c.message
            else:
                ET.SubElement(case, "system-out").text = c.message
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


HIGHER_IS_BETTER = {"imgs_per_s", "imgs_per_s_first_epoch", "inference_imgs_per_s", "train_accuracy", "test_accuracy"}
DEFAULT_REFERENCE_METRICS = ("imgs_per_s", "imgs_per_s_first_epoch", "inference_imgs_per_s", "epoch_time", "step_time")


def reference_from_records(
    records: list[dict], tolerance: float, metrics: tuple[str, ...] = DEFAULT_REFERENCE_METRICS
) -> dict:
    """A reference file from these runs: each metric may get worse by at most `tolerance`
    (a fraction) and better by any amount."""
    refs: dict = {}
    for record in records:
        measured = run_metrics(record)
        slot = refs.setdefault(record["workload"], {}).setdefault(record["system"], {})
        slot = slot.setdefault(int(record["num_ranks"]), {})
        for metric in metrics:
            if metric in measured:
                bounds = [-tolerance, None] if metric in HIGHER_IS_BETTER else [None, tolerance]
                slot[metric] = [measured[metric], *bounds]
    return refs
