"""Atomic writes: all or nothing, and the permissions a plain open/mkdir would give."""

from __future__ import annotations

import os
import stat

import pytest
from PIL import Image

from zero123.utils.fileio import atomic_directory, atomic_save_image, atomic_write


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_atomic_writes_follow_the_umask(tmp_path, umask_027):
    with atomic_write(tmp_path / "a.txt", "w") as f:
        f.write("x")
    atomic_save_image(Image.new("RGB", (4, 4)), tmp_path / "b.png")
    with atomic_directory(tmp_path / "d") as tmp:
        (tmp / "inner.txt").write_text("y")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "b.png").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o750
    assert os.umask(0o027) == 0o027  # reading the umask left it as it was


def test_a_failed_write_leaves_the_old_content(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path, "w") as f:
        f.write("new")
        raise RuntimeError("boom")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "d") as tmp:
        (tmp / "x").write_text("partial")
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
