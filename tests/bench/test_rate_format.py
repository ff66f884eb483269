"""Rates in logs keep significant digits (a slow run printed "0.0 samples/s")."""

from __future__ import annotations

import json
import math
import re

import pytest
from support.run import TINY_SYNTHETIC, run_mlscale

from mlscale.bench.logs import rate


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.049512, "0.0495 samples/s"),
        (0.00012345, "0.000123 samples/s"),
        (1.0, "1.00 samples/s"),
        (12.345, "12.3 samples/s"),
        (999.6, "1000 samples/s"),
        (1234.5, "1234 samples/s"),
        (-0.5, "-0.500 samples/s"),
        (0.0, "0 samples/s"),
        (math.inf, "inf samples/s"),
        (None, "n/a samples/s"),
    ],
)
def test_rate_keeps_three_significant_digits(value, text):
    assert rate(value, "samples/s") == text


def test_rate_digits():
    assert rate(0.049512, "MB/s", digits=2) == "0.050 MB/s"
    assert float(rate(3.14159e-7, "x", digits=4).split()[0]) == pytest.approx(3.142e-7, rel=1e-9)


def test_run_log_prints_the_records_rates_with_significant_digits(tmp_path):
    """A real run: every rate in its log lines is the record's rate written by rate(), never a rounded 0.0."""
    run_mlscale("run", "synthetic", *TINY_SYNTHETIC, "--infer", "--out", tmp_path, "--run-id", "r")
    record = json.loads((tmp_path / "r" / "record.json").read_text())
    log = (tmp_path / "r" / "run.log").read_text()
    for epoch in record["epoch_stats"]:
        assert f"({rate(epoch['train_imgs_per_s'], 'samples/s')})" in log
    assert f"({rate(record['inference']['imgs_per_s'], 'samples/s')})" in log
    assert not re.search(r"\b0\.0 samples/s", log)
