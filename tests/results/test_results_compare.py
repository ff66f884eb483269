"""`mlscale compare`: ReFrame-style references, regressions fail, JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import yaml
from support.records import make_run
from support.run import run_mlscale

from mlscale.errors import UserError
from mlscale.results import compare


def _write_refs(path, refs):
    path.write_text(yaml.safe_dump(refs))
    return path


def test_bounds_are_relative_like_reframe():
    check = compare.Check("r", "w", "s", 1, "imgs_per_s", 96.0, 100.0, -0.05, None)
    assert check.passed and check.low_bound == pytest.approx(95.0) and check.high_bound == float("inf")
    assert not compare.Check("r", "w", "s", 1, "imgs_per_s", 94.0, 100.0, -0.05, None).passed
    assert compare.Check("r", "w", "s", 1, "total_time", 109.0, 100.0, None, 0.1).passed
    assert not compare.Check("r", "w", "s", 1, "total_time", 111.0, 100.0, None, 0.1).passed
    # negative reference values: bounds scale with |value|
    assert compare.Check("r", "w", "s", 1, "x", -1.05, -1.0, -0.1, 0.1).passed
    assert not compare.Check("r", "w", "s", 1, "missing", None, 1.0, None, None).passed


def test_wildcards_and_exact_keys(tmp_path):
    refs = {
        "synthetic": {
            "*": {"*": {"imgs_per_s": [1.0, -0.5, None], "test_accuracy": [0.5, -0.1, None]}},
            "box": {2: {"imgs_per_s": [500.0, -0.05, None]}},
        }
    }
    assert compare.references_for(refs, "synthetic", "box", 2)["imgs_per_s"] == [500.0, -0.05, None]
    assert compare.references_for(refs, "synthetic", "box", 4)["imgs_per_s"] == [1.0, -0.5, None]
    assert "test_accuracy" in compare.references_for(refs, "synthetic", "box", 2)
    assert compare.references_for(refs, "cloud-mask", "box", 2) == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2", "not valid YAML"),
        ("synthetic: {box: {2: {imgs_per_s: 100}}}", "expected [value, lower, upper]"),
        ("synthetic: {box: {2: {imgs_per_s: [100, 0.05, null]}}}", "lower bound must be <= 0"),
        ("synthetic: {box: {two: {imgs_per_s: [100, -0.05, null]}}}", "rank count must be an integer"),
    ],
)
def test_bad_reference_files(tmp_path, text, message):
    path = tmp_path / "refs.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message.replace("[", r"\[")):
        compare.load_references(path)


def test_compare_command_fails_on_regression_and_writes_junit(tmp_path):
    fast = make_run(tmp_path / "runs", "fast", ranks=2, system="box", compute_s=0.10)
    slow = make_run(tmp_path / "runs", "slow", ranks=2, system="box", compute_s=0.13)  # 30% slower steps
    refs = tmp_path / "refs.yaml"
    run_mlscale("compare", fast, "--write-reference", refs, "--tolerance", "0.1")
    written = yaml.safe_load(refs.read_text())
    assert written["synthetic"]["box"][2]["imgs_per_s"][1:] == [-0.1, None]
    assert written["synthetic"]["box"][2]["step_time"][1:] == [None, 0.1]

    ok = run_mlscale("compare", fast, "--reference", refs, "--junit", tmp_path / "ok.xml")
    assert "all 5 check(s) passed" in ok.stdout
    suites = ET.parse(tmp_path / "ok.xml").getroot()
    assert suites.find("testsuite").get("failures") == "0"

    bad = run_mlscale("compare", fast, slow, "--reference", refs, "--junit", tmp_path / "bad.xml", check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "REGRESSION slow: imgs_per_s" in bad.stdout and "REGRESSION fast" not in bad.stdout
    suites = {s.get("name"): s for s in ET.parse(tmp_path / "bad.xml").getroot()}
    assert suites["fast"].get("failures") == "0"
    assert int(suites["slow"].get("failures")) >= 3
    failing = [c.get("name") for c in suites["slow"] if c.find("failure") is not None]
    assert "slow.imgs_per_s" in failing and "slow.step_time" in failing


def test_unreferenced_run_fails_only_when_strict(tmp_path):
    run = make_run(tmp_path / "runs", "other", ranks=1, system="elsewhere")
    refs = _write_refs(tmp_path / "refs.yaml", {"synthetic": {"box": {2: {"imgs_per_s": [1.0, -0.1, None]}}}})
    assert "no reference" in run_mlscale("compare", run, "--reference", refs).stdout
    assert run_mlscale("compare", run, "--reference", refs, "--strict", check=False).returncode == 1
    missing = run_mlscale("compare", run, "--reference", tmp_path / "nope.yaml", check=False)
    assert missing.returncode == 2 and "no such reference file" in missing.stderr
