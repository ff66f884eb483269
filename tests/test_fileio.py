"""mlscale.fileio: a write replaces its target whole, or leaves it as it was and nothing beside it."""

from __future__ import annotations

import os
import stat

import pytest

from mlscale.fileio import atomic_dir, atomic_path, atomic_write


class Boom(Exception):
    pass


def test_success_replaces_the_target(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    assert atomic_write(target, "new ü") == target
    assert target.read_text(encoding="utf-8") == "new ü"
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    with atomic_path(tmp_path / "fresh.h5", suffix=".h5") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".h5") and tmp.name.startswith(".")
        tmp.write_text("written by a library that wants its extension")
    assert (tmp_path / "fresh.h5").read_text() == "written by a library that wants its extension"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.h5", "out.txt"]


@pytest.mark.parametrize("existing", [True, False])
def test_a_failing_writer_leaves_the_target_untouched_and_no_temporary(tmp_path, existing):
    target = tmp_path / "out.txt"
    if existing:
        target.write_text("old")
    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.write_text("half of it")
        raise Boom
    with pytest.raises(Boom), atomic_path(target):  # failed before writing anything
        raise Boom
    assert [p.name for p in tmp_path.iterdir()] == (["out.txt"] if existing else [])
    if existing:
        assert target.read_text() == "old"


def test_a_directory_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(Boom), atomic_dir(target) as tmp:
        (tmp / "record.json").write_text("{")
        (tmp / "sub").mkdir()
        raise Boom
    assert list(tmp_path.iterdir()) == []

    with atomic_dir(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".")
        (tmp / "record.json").write_text("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert (target / "record.json").read_text() == "{}"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755

    # A directory that exists and is not empty is not replaced.
    with pytest.raises(OSError), atomic_dir(target) as tmp:
        (tmp / "record.json").write_text("[]")
    assert (target / "record.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_larcv_writer_leaves_nothing_when_it_fails(tmp_path):
    """LarcvWriter holds its temporary file open across calls: every way out but close() drops it."""
    from mlscale.io.larcv import LarcvWriter

    target = tmp_path / "events.h5"
    with pytest.raises(ValueError):
        LarcvWriter(target, ["wire", "wire"])  # fails while creating its groups
    with pytest.raises(Boom), LarcvWriter(target, ["wire"]):
        raise Boom
    LarcvWriter(target, ["wire"]).abort()
    assert list(tmp_path.iterdir()) == []
    assert LarcvWriter(target, ["wire"]).close() == target
    assert [p.name for p in tmp_path.iterdir()] == ["events.h5"]
