"""Atomic writes: a failed write leaves the last good file and no partial file."""

from __future__ import annotations

import pytest

from digits.util.files import atomic_path, write_text_atomic


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "metrics.json"
    write_text_atomic(target, "good")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "good"
    assert [path.name for path in tmp_path.iterdir()] == ["metrics.json"]


def test_temporary_file_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "model.keras") as temporary:
        assert temporary.suffix == ".keras" and temporary.parent == tmp_path
        temporary.write_text("x")
    assert (tmp_path / "model.keras").read_text() == "x"
