"""Atomic writes (zero123.utils.fileio): complete or absent, and permissions from the umask."""

from __future__ import annotations

import os
import stat

import pytest
from PIL import Image

from zero123.utils.fileio import atomic_directory, atomic_save_image, atomic_write, current_umask


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)])
def test_modes_follow_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    """Before: every file 0600 and folder 0700 whatever the umask (the temporary's private modes)."""
    umask(mask)
    assert current_umask() == mask
    with atomic_write(tmp_path / "a.txt", "w") as f:
        f.write("x")
    atomic_save_image(Image.new("RGB", (8, 8)), tmp_path / "b.png")
    with atomic_directory(tmp_path / "folder") as tmp:
        (tmp / "inside.txt").write_text("y")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "b.png").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == dir_mode


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "a.txt", "w") as f:
            f.write("half")
            raise RuntimeError("disk gone")
    assert list(tmp_path.iterdir()) == []
