"""The bad-input corpus (tests/badinput/cases.py): every case exits 2 with one line naming the
file or flag, no traceback, and nothing written."""

from __future__ import annotations

import pytest

from badinput.cases import all_cases
from badinput.harness import check_case, warm_up

CASES = all_cases()
assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.fixture(scope="module", autouse=True)
def _warm():
    warm_up()


PARAMS = [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.flaky, strict=False)] if c.flaky else [])
          for c in CASES]  # fmt: skip


@pytest.mark.parametrize("case", PARAMS)
def test_bad_input(case, tmp_path):
    check_case(case, tmp_path / "case")
