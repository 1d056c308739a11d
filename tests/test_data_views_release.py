"""ViewsReleaseDataset (issue 4 item 5; docs/conventions.md, Cameras and Dataset layout): layout, split, white background,
[-1, 1] scaling, T from the stored matrices, deterministic pair sampling, clear errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from zero123.camera import world_to_cam_from_spherical
from zero123.data.views_release import ViewsReleaseDataset, list_objects, object_views, split_names


def _make(root, names, views=4, size=16):
    """A hand-made views_release folder: view k of every object is at polar 30+20k deg, azimuth 40k deg."""
    for name in names:
        d = root / name
        d.mkdir(parents=True)
        for k in range(views):
            rgba = np.zeros((size, size, 4), np.uint8)
            rgba[..., 0] = 10 * k  # transparent pixels carry junk colour: must become white
            rgba[4:12, 4:12] = (200, 100, 50, 255)
            rgba[2, 2] = (0, 0, 0, 128)  # partial alpha: kept as is, not blended
            Image.fromarray(rgba, "RGBA").save(d / f"{k:03d}.png")
            np.save(d / f"{k:03d}.npy", world_to_cam_from_spherical(math.radians(30 + 20 * k), math.radians(40 * k), 1.5 + 0.1 * k))
    (root / "valid_paths.json").write_text(json.dumps(names))


def test_split_first_99_percent_train_and_tiny_datasets():
    """docs/conventions.md, Dataset layout: first 99% train, rest val; val non-empty for >= 2 objects; 1 object -> train only."""
    names = [f"o{i}" for i in range(300)]
    assert split_names(names, "train") == names[:297] and split_names(names, "val") == names[297:]
    assert split_names(names[:2], "val") == ["o1"] and split_names(names[:2], "train") == ["o0"]
    assert split_names(names[:1], "train") == ["o0"] and split_names(names[:1], "val") == []
    with pytest.raises(ValueError, match="split"):
        split_names(names, "test")


def test_item_contents_white_background_and_pose(tmp_path):
    _make(tmp_path, ["a", "b", "c"])
    ds = ViewsReleaseDataset(tmp_path, split="train", image_size=16, seed=0)
    assert len(ds) == 2 and ds.object_ids == ["a", "b"] and ds.num_views("a") == 4
    item = ds[0]
    assert item["image_target"].shape == (3, 16, 16) and item["image_target"].dtype == torch.float32
    img = item["image_cond"]
    assert torch.allclose(img[:, 0, 0], torch.ones(3))  # alpha == 0 -> white
    assert torch.allclose(img[:, 2, 2], -torch.ones(3))  # alpha 128, black: not blended with white
    assert torch.allclose(img[:, 8, 8], torch.tensor([200, 100, 50]) / 127.5 - 1)
    c, t = item["cond_index"], item["target_index"]
    assert c != t
    # docs/conventions.md, Cameras: T = [theta_t - theta_c, sin(phi_t - phi_c), cos(phi_t - phi_c), r_t - r_c], by hand
    d_az = math.radians(40 * (t - c))
    expected = [math.radians(20 * (t - c)), math.sin(d_az), math.cos(d_az), 0.1 * (t - c)]
    np.testing.assert_allclose(item["pose"].numpy(), expected, atol=1e-6)
    polar = ViewsReleaseDataset(tmp_path, image_size=16, camera_embedding="cond_polar")[0]
    assert polar["pose"][3].item() == pytest.approx(math.radians(30 + 20 * polar["cond_index"]), abs=1e-6)


def test_resize_and_deterministic_pairs(tmp_path):
    _make(tmp_path, ["a", "b"], views=12)
    ds = ViewsReleaseDataset(tmp_path, split="all", image_size=8, seed=3)
    assert ds[1]["image_cond"].shape == (3, 8, 8)
    pairs0 = [ds.sample_pair(i) for i in range(2)]
    assert [ViewsReleaseDataset(tmp_path, split="all", seed=3).sample_pair(i) for i in range(2)] == pairs0
    draws = set()
    for epoch in range(20):
        ds.set_epoch(epoch)
        draws.add(ds.sample_pair(0))
    assert len(draws) > 5 and all(c != t for c, t in draws)


def test_without_valid_paths_uses_sorted_folders(tmp_path):
    _make(tmp_path, ["b", "a"])
    (tmp_path / "valid_paths.json").unlink()
    with pytest.warns(UserWarning, match="valid_paths.json"):
        ds = ViewsReleaseDataset(tmp_path, split="all")
    assert ds.object_ids == ["a", "b"]


def test_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ViewsReleaseDataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="no objects"):
        ViewsReleaseDataset(tmp_path)
    (tmp_path / "valid_paths.json").write_text('["ghost"]')
    with pytest.raises(FileNotFoundError, match="ghost"):
        ViewsReleaseDataset(tmp_path, split="all")[0]
    with pytest.raises(ValueError, match="camera_embedding"):
        ViewsReleaseDataset(tmp_path, camera_embedding="absolute")


def test_png_npy_mismatch_is_a_clear_error(tmp_path):
    """Every NNN.png needs its NNN.npy and vice versa: the error names the object folder and the missing files."""
    _make(tmp_path, ["a", "b", "c"])
    assert object_views(tmp_path / "a") == [0, 1, 2, 3] and list_objects(tmp_path) == ["a", "b", "c"]
    (tmp_path / "b" / "002.npy").unlink()
    (tmp_path / "c" / "001.png").unlink()
    ds = ViewsReleaseDataset(tmp_path, split="all", image_size=16)
    assert ds.num_views("a") == 4
    with pytest.raises(ValueError, match=r"'[^']*b'.*4 \.png and 3 \.npy.*missing 002\.npy"):
        ds.num_views("b")
    with pytest.raises(ValueError, match=r"'[^']*c'.*3 \.png and 4 \.npy.*missing 001\.png"):
        ds[2]
