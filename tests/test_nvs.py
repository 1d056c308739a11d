"""zero123.nvs: the library use-case behind `zero123 nvs`, the web app and batch jobs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zero123.camera import RelativeCamera
from zero123.nvs import NovelViews, Preprocessing, SamplingSettings, check_cameras, generate_views, prepare_input

SETTINGS = SamplingSettings(steps=3)
CAMERAS = [{"azimuth": 90.0}, {"azimuth": 180.0, "elevation": 30.0}, {"azimuth": 270.0, "elevation": -20.0}]


def test_views_are_one_batched_call_with_seed_plus_i(tiny_pipeline, tiny_image):
    """What keeps `zero123 nvs` byte-identical: every view sampled in ONE pipeline call, view i with
    a CPU generator seeded seed + i, the prepared image as input. Exactly equal, not approximately."""
    result = generate_views(tiny_pipeline, tiny_image, CAMERAS, settings=SETTINGS, seed=5)
    prepared = prepare_input(tiny_image)
    expected = tiny_pipeline(prepared.image, cameras=[RelativeCamera.from_params(c) for c in CAMERAS],
                             num_inference_steps=3, generator=[torch.Generator().manual_seed(5 + i) for i in range(3)],
                             output_type="pil").images
    assert [v.seed for v in result.views] == [5, 6, 7]
    for view, exp in zip(result.views, expected):
        assert np.array_equal(np.asarray(view.image), np.asarray(exp))
    # a different seed changes the views (the comparison above can fail)
    other = generate_views(tiny_pipeline, prepared, CAMERAS[:1], settings=SETTINGS, seed=6)
    assert not np.array_equal(np.asarray(other.views[0].image), np.asarray(result.views[0].image))


def test_save_writes_everything_atomically(tiny_pipeline, tiny_image, tmp_path):
    result = generate_views(tiny_pipeline, tiny_image, CAMERAS[:2], settings=SETTINGS)
    assert isinstance(result, NovelViews) and result.prepared.method == "alpha"
    written = result.save(tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["contact_sheet.png", "cutout.png", "input.png", "view_00_az90_el0_r1.png", "view_01_az180_el30_r1.png"]
    assert Image.open(written["cutout"]).size == tiny_image.size  # the cut-out at full size
    assert [v["azimuth"] for v in written["views"]] == [90.0, 180.0]
    sheet = result.contact_sheet()
    assert sheet.width >= 3 * result.model_input.width


def test_cutout_is_the_input_at_full_size_with_the_mask_as_alpha(tiny_image):
    big = tiny_image.resize((300, 300), Image.Resampling.NEAREST)
    prepared = prepare_input(big)
    assert prepared.cutout.size == (300, 300) and prepared.cutout.mode == "RGBA"
    alpha = np.asarray(prepared.cutout)[..., 3]
    assert set(np.unique(alpha)) == {0, 255}
    np.testing.assert_array_equal(alpha == 255, np.asarray(big)[..., 3] > 127)
    assert prepared.image.size == (256, 256)


def test_no_preprocess_pads_a_non_square_image_instead_of_squashing():
    wide = Image.new("RGB", (80, 40), (200, 0, 0))
    prepared = prepare_input(wide, Preprocessing(segment="none"))
    assert prepared.method == "none" and prepared.cutout is None
    arr = np.asarray(prepared.image)
    assert arr.shape == (80, 80, 3)
    assert (arr[:20] == 255).all() and (arr[60:] == 255).all()  # white bands above and below
    assert (arr[20:60] == (200, 0, 0)).all()
    square = Image.new("RGB", (64, 64), (1, 2, 3))
    assert np.array_equal(np.asarray(prepare_input(square, Preprocessing(segment="none")).image), np.asarray(square))


@pytest.mark.parametrize("cameras,cond,match", [
    ([{"elevation": 200.0}], None, "^elevation"),
    ([{"azimuth": 1e9}], None, "^azimuth"),
    ([{"azimuth": 10.0}], float("nan"), "^cond_elevation"),
    ([{"azimuth": 10.0}], 95.0, "^cond_elevation"),
    ([], None, "non-empty"),
])
def test_cameras_are_checked_before_any_work(cameras, cond, match):
    """Before: elevations beyond the training range and absurd azimuths passed silently, and a NaN
    --cond-elevation was ignored by relative_radius models."""
    with pytest.raises(ValueError, match=match):
        check_cameras(cameras, cond_elevation=cond)


def test_cond_elevation_nan_is_an_error_in_the_pipeline_too(tiny_pipeline, tiny_image):
    with pytest.raises(ValueError, match="cond_elevation"):
        tiny_pipeline(tiny_image, {"azimuth": 1.0}, num_inference_steps=2, cond_elevation=float("nan"))
