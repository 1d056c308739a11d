"""Demo preprocessing (docs/conventions.md, Preprocessing): hard mask (alpha > 127), white background, crop to the
mask's box, longest side fitted to 200 of 256 (issue 2; ``upscale=False`` = the original's
downscale-only rule), centred; deterministic; a clear error when there is no foreground."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from zero123.image_io import composite_on_white
from zero123.preprocess import MissingDependencyError, preprocess_image


def rgba_object(size=(120, 80), box=(30, 20, 70, 40), colour=(200, 30, 40)):
    im = Image.new("RGBA", size, (0, 255, 0, 0))  # green but transparent: must not leak
    im.paste(colour + (255,), box)
    return im


def test_alpha_crop_fit_centre():
    """Object 40x20 -> longest side 200 (scale 5) -> 200x100 centred on 256: x 28..228, y 78..178."""
    out = preprocess_image(rgba_object())
    assert out.method == "alpha" and out.bbox == (30, 20, 70, 40) and out.scale == pytest.approx(5.0)
    assert out.image.mode == "RGB" and out.image.size == (256, 256)
    assert out.mask.shape == (256, 256) and out.mask.dtype == bool
    ys, xs = np.nonzero(out.mask)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (28, 228, 78, 178)
    arr = np.asarray(out.image)
    assert tuple(arr[128, 128]) == (200, 30, 40)
    assert (arr[~out.mask] == 255).all()  # white background, no green from the transparent pixels
    assert out.rgba.getpixel((0, 0))[3] == 0 and out.rgba.getpixel((128, 128))[3] == 255


def test_hard_mask_threshold_127():
    """docs/conventions.md, Preprocessing: alpha > 127 is foreground, <= 127 background (no blending of partial alpha)."""
    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    im.paste((10, 20, 30, 128), (10, 10, 30, 30))  # 128: foreground
    im.paste((10, 20, 30, 127), (40, 40, 60, 60))  # 127: background
    out = preprocess_image(im)
    assert out.bbox == (10, 10, 30, 30)


def test_upscale_flag():
    small = rgba_object(size=(64, 64), box=(20, 20, 40, 30))  # 20x10 object
    assert preprocess_image(small, upscale=True).mask.sum() == 200 * 100
    out = preprocess_image(small, upscale=False)  # the original demo: never upscale
    assert out.scale == 1.0 and out.mask.sum() == 20 * 10
    big = rgba_object(size=(900, 900), box=(100, 100, 800, 450))  # 700 wide -> downscaled either way
    assert preprocess_image(big, upscale=False).mask.sum() == preprocess_image(big).mask.sum() == 200 * 100


def test_custom_sizes():
    out = preprocess_image(rgba_object(), object_size=50, canvas_size=64)
    assert out.image.size == (64, 64) and out.mask.sum() == 50 * 25


def test_threshold_plain_background_keeps_holes():
    """A plain (off-)white background is flood-filled from the borders: a white hole INSIDE the
    object is not connected to the border, so it stays part of the object."""
    arr = np.full((100, 140, 3), 250, np.uint8)
    arr[30:70, 40:100] = (20, 40, 200)
    arr[45:55, 65:75] = 250  # hole
    out = preprocess_image(Image.fromarray(arr))
    assert out.method == "threshold" and out.bbox == (40, 30, 100, 70)
    assert out.mask.sum() == 200 * round(40 * 200 / 60)  # hole included


def test_grabcut_busy_background_is_deterministic():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 120, (96, 128, 3), dtype=np.uint8)  # busy dark background
    arr[24:72, 40:88] = (240, 220, 30) + rng.integers(0, 10, (48, 48, 3))  # bright object
    first = preprocess_image(Image.fromarray(arr))
    assert first.method == "grabcut"
    x0, y0, x1, y1 = first.bbox
    assert abs(x0 - 40) <= 2 and abs(y0 - 24) <= 2 and abs(x1 - 88) <= 2 and abs(y1 - 72) <= 2
    second = preprocess_image(Image.fromarray(arr))
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image))
    assert np.array_equal(first.mask, second.mask)


@pytest.mark.parametrize(
    "image,method",
    [
        (Image.new("RGB", (64, 64), (255, 255, 255)), "auto"),
        (Image.new("RGBA", (64, 64), (255, 0, 0, 0)), "auto"),
        (Image.new("RGB", (64, 64), (30, 30, 30)), "threshold"),
    ],
)
def test_no_foreground(image, method):
    with pytest.raises(ValueError, match="no foreground"):
        preprocess_image(image, method=method)


def test_bad_arguments():
    im = rgba_object()
    with pytest.raises(ValueError, match="method must be one of"):
        preprocess_image(im, method="carvekit")
    with pytest.raises(ValueError, match="must not exceed canvas_size"):
        preprocess_image(im, object_size=300)
    with pytest.raises(ValueError, match="canvas_size must be an integer"):
        preprocess_image(im, canvas_size=4)
    with pytest.raises(ValueError, match="method='alpha' needs an image with transparency"):
        preprocess_image(Image.new("RGB", (64, 64)), method="alpha")


@pytest.mark.skipif(importlib.util.find_spec("rembg") is not None, reason="rembg is installed")
def test_rembg_missing_is_clear():
    with pytest.raises(MissingDependencyError, match=r"pip install 'zero123\[rembg\]'"):
        preprocess_image(rgba_object(), method="rembg")
    with pytest.raises(ValueError):  # also a ValueError, for the CLI's one-line errors
        preprocess_image(rgba_object(), method="rembg")


def test_accepts_paths_and_arrays(tmp_path):
    path = tmp_path / "obj.png"
    rgba_object().save(path)
    a = preprocess_image(path)
    b = preprocess_image(np.asarray(rgba_object()))
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_composite_on_white_blends():
    im = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    assert composite_on_white(im).getpixel((0, 0)) == (127, 127, 127)


@pytest.mark.parametrize("image,method,suggested,not_suggested", [
    (Image.new("RGB", (64, 64), (30, 30, 30)), "threshold", "'grabcut'", "'threshold'"),
    (Image.new("RGB", (64, 64), (30, 30, 30)), "grabcut", "'threshold'", "'grabcut'"),
    (Image.new("RGBA", (64, 64), (255, 0, 0, 0)), "auto", "'threshold'", "'alpha'"),
])
def test_no_foreground_suggests_another_method(image, method, suggested, not_suggested):
    """Before: 'try another method (e.g. method='grabcut')' even when GrabCut was what failed."""
    with pytest.raises(ValueError, match="no foreground") as e:
        preprocess_image(image, method=method)
    advice = str(e.value).split("try another method")[1]
    assert suggested in advice and not_suggested not in advice
