"""The step timer attributes time to the phase it was spent in."""

from __future__ import annotations

import time

import pytest

from mlscale.bench.timing import PHASES, NullTimer, StepTimer, phase_stats


def test_host_timer_attributes_each_phase():
    timer = StepTimer()
    pauses = {"data_wait": 0.0, "h2d": 0.0, "forward": 0.03, "backward": 0.0, "optimizer": 0.01}
    for _ in range(3):
        timer.step_start()
        for phase in PHASES:
            time.sleep(pauses[phase])
            timer.mark(phase)
    steps = timer.epoch_end()
    assert set(steps) == set(PHASES)
    assert all(len(v) == 3 for v in steps.values())
    assert steps["forward"].min() >= 0.03
    assert steps["optimizer"].min() >= 0.01
    assert steps["backward"].max() < 0.01
    assert timer.epoch_end()["forward"].size == 0  # an epoch's steps are handed out once


def test_incomplete_steps_are_dropped():
    timer = StepTimer()
    timer.step_start()
    timer.mark("data_wait")  # e.g. the loop broke out mid-step
    assert timer.epoch_end()["data_wait"].size == 0


def test_null_timer_records_nothing():
    timer = NullTimer()
    timer.step_start()
    timer.mark("forward")
    assert all(v.size == 0 for v in timer.epoch_end().values())


def test_phase_stats():
    import numpy as np

    stats = phase_stats(np.array([1.0, 2.0, 3.0, 4.0]))
    assert stats["mean"] == 2.5 and stats["median"] == 2.5 and stats["count"] == 4 and stats["total"] == 10.0
    assert stats["p95"] == pytest.approx(3.85)
    assert phase_stats(np.zeros(0))["mean"] is None
