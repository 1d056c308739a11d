"""Image preprocessing as the official demo did it (docs/conventions.md, Preprocessing): pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from .image_io import composite_on_white, load_image


# ---------------------------------------------------------------------- demo preprocessing
PreprocessMethod = Literal["auto", "alpha", "threshold", "grabcut", "rembg"]
PREPROCESS_METHODS: tuple[str, ...] = ("auto", "alpha", "threshold", "grabcut", "rembg")
#: Hard-mask threshold on alpha (docs/conventions.md, Preprocessing: alpha > 127 is foreground).
ALPHA_THRESHOLD = 127
#: Longest side GrabCut works at; larger inputs are segmented on a downscaled copy.
_GRABCUT_MAX_SIDE = 512


class MissingDependencyError(ImportError, ValueError):
    """An optional dependency is needed for the requested option (also a ``ValueError``, so the CLI
    reports it as a one-line error)."""


@dataclass(frozen=True)
class PreprocessResult:
    """Output of :func:`preprocess_image`.

    Attributes:
        image: RGB ``canvas_size x canvas_size`` image, white background, object centred.
        mask: bool array ``(canvas_size, canvas_size)``, True on the object (alpha > 127 after resizing).
        bbox: the object's bounding box in the INPUT image, ``(left, top, right, bottom)`` in pixels,
            right/bottom exclusive.
        method: the segmentation method actually used (``"alpha"``, ``"threshold"``, ``"grabcut"``, ``"rembg"``).
        scale: resize factor applied to the cropped object.
        cutout: the input at its full resolution, RGBA, with the hard mask as alpha (what was cut out).
    """

    image: Image.Image
    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    method: str
    scale: float
    cutout: Image.Image | None = None

    @property
    def rgba(self) -> Image.Image:
        """The canvas with the mask as alpha (255 on the object, 0 elsewhere)."""
        rgba = self.image.convert("RGBA")
        rgba.putalpha(Image.fromarray(self.mask.astype(np.uint8) * 255, mode="L"))
        return rgba


def preprocess_image(
    image,
    *,
    method: PreprocessMethod = "auto",
    object_size: int = 200,
    canvas_size: int = 256,
    upscale: bool = True,
    threshold: float = 30.0,
    grabcut_iterations: int = 5,
) -> PreprocessResult:
    """Cut the object out, centre it and fit it on a white square canvas (docs/conventions.md, Preprocessing).

    Steps: 1. segment (hard mask); 2. background to white; 3. crop to the mask's bounding box;
    4. resize so the longest side is ``object_size`` (aspect kept); 5. paste centred on a white
    ``canvas_size`` canvas. The result is deterministic for a given input.

    Segmentation (``method``):
        * ``"alpha"``: the image's own alpha channel, foreground = alpha > 127.
        * ``"threshold"``: a plain background; its colour is the median of the border pixels, and
          pixels within ``threshold`` (max channel difference, 0-255) of it that are connected to
          the border are background (a flood fill from the borders, so holes inside the object
          keep their colour). Foreground specks under 1% of the largest part are dropped.
        * ``"grabcut"``: OpenCV GrabCut initialised with a rectangle 4% inside the border
          (``cv2.setRNGSeed(0)`` first, so it is deterministic).
        * ``"rembg"``: the optional ``rembg`` package (``pip install 'zero123[rembg]'``); never used
          unless asked for.
        * ``"auto"``: ``"alpha"`` when the image has transparent pixels, else ``"threshold"`` when
          at least 90% of the border is within ``threshold`` of one colour, else ``"grabcut"``.

    Scaling: the original demo only ever DOWNscaled (longest side at most 200 px). We default to
    ``upscale=True``, fitting the longest side to exactly ``object_size`` as issue 2 asks, so small
    inputs fill the frame like large ones (the object occupies about 78% of the canvas, the
    framing the model was trained on). Pass ``upscale=False`` for the original's behaviour.

    Args:
        image: anything :func:`zero123.image_io.load_image` accepts (path, PIL, numpy, torch).
        method: segmentation method, see above.
        object_size: target longest side of the object in pixels, ``1 <= object_size <= canvas_size``.
        canvas_size: side of the square output canvas in pixels.
        upscale: allow enlarging objects smaller than ``object_size``.
        threshold: background colour tolerance for ``"threshold"`` / ``"auto"`` (0-255).
        grabcut_iterations: GrabCut iterations.

    Raises:
        ValueError: bad arguments, ``method="alpha"`` on an image without transparency, or no
            foreground found (an empty or all-background image).
        MissingDependencyError: ``method="rembg"`` without ``rembg`` installed.

    >>> rgba = Image.new("RGBA", (64, 32), (0, 0, 0, 0)); rgba.paste((255, 0, 0, 255), (8, 8, 24, 24))
    >>> out = preprocess_image(rgba, object_size=100, canvas_size=128)
    >>> out.method, out.bbox, out.image.size, int(out.mask.sum())
    ('alpha', (8, 8, 24, 24), (128, 128), 10000)
    """
    # 1. Check inputs
    if method not in PREPROCESS_METHODS:
        raise ValueError(f"method must be one of {PREPROCESS_METHODS}, got {method!r}")
    for name, value, lo in (("canvas_size", canvas_size, 8), ("object_size", object_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    if object_size > canvas_size:
        raise ValueError(f"object_size ({object_size}) must not exceed canvas_size ({canvas_size})")
    if not (isinstance(threshold, (int, float)) and 0 <= threshold <= 255):
        raise ValueError(f"threshold must be a number in [0, 255], got {threshold!r}")
    image = load_image(image, name="image")

    # 2. Segment: a hard foreground mask at the input's resolution
    mask, used = _segment(image, method, float(threshold), int(grabcut_iterations))
    if not mask.any():
        raise _no_foreground(used)

    # 3. Crop to the mask's bounding box, background white
    ys, xs = np.nonzero(mask)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    rgb = np.asarray(image.convert("RGB")).copy()
    alpha = mask.astype(np.uint8) * 255
    cutout = Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA")
    rgb[~mask] = 255
    crop = Image.fromarray(np.dstack([rgb, alpha])[bbox[1] : bbox[3], bbox[0] : bbox[2]], mode="RGBA")

    # 4. Resize so the longest side is object_size (never up unless upscale)
    scale = object_size / max(crop.size)
    if not upscale:
        scale = min(scale, 1.0)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    if size != crop.size:
        crop = crop.resize(size, Image.Resampling.LANCZOS)  # PIL premultiplies RGBA here

    # 5. Paste centred on a white canvas
    canvas = Image.new("RGBA", (canvas_size, canvas_size), (255, 255, 255, 0))
    canvas.paste(crop, ((canvas_size - size[0]) // 2, (canvas_size - size[1]) // 2))
    out_mask = np.asarray(canvas)[..., 3] > ALPHA_THRESHOLD
    return PreprocessResult(
        image=composite_on_white(canvas), mask=out_mask, bbox=bbox, method=used, scale=float(scale), cutout=cutout
    )


#: What to try when a segmentation method finds nothing (never the method that just failed).
_OTHER_METHODS = {"alpha": ("threshold", "grabcut"), "threshold": ("grabcut", "rembg"),
                  "grabcut": ("threshold", "rembg"), "rembg": ("grabcut", "threshold")}


def _no_foreground(used: str, why: str = "it looks empty or all background") -> ValueError:
    others = " or ".join(repr(m) for m in _OTHER_METHODS[used])
    return ValueError(
        f"no foreground found in the image with segmentation method {used!r} ({why}); check the image, "
        f"or try another method: {others}"
    )


def _segment(image: Image.Image, method: str, threshold: float, iterations: int) -> tuple[np.ndarray, str]:
    has_alpha = image.mode == "RGBA" and np.asarray(image)[..., 3].min() < 255
    if method == "alpha":
        if not has_alpha:
            raise ValueError(
                "method='alpha' needs an image with transparency (RGBA with some alpha < 255); "
                f"got mode {image.mode} with no transparent pixels"
            )
        return np.asarray(image)[..., 3] > ALPHA_THRESHOLD, "alpha"
    if method == "rembg":
        return _rembg_mask(image), "rembg"
    if method == "auto" and has_alpha:
        return np.asarray(image)[..., 3] > ALPHA_THRESHOLD, "alpha"
    rgb = np.asarray(image.convert("RGB"))
    if method == "threshold" or (method == "auto" and _plain_border(rgb, threshold)):
        return _threshold_mask(rgb, threshold), "threshold"
    return _grabcut_mask(rgb, iterations), "grabcut"


def _border_pixels(rgb: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]]).astype(np.int16)


def _plain_border(rgb: np.ndarray, threshold: float) -> bool:
    border = _border_pixels(rgb)
    colour = np.median(border, axis=0)
    return float(np.mean(np.abs(border - colour).max(axis=1) <= threshold)) >= 0.9


def _threshold_mask(rgb: np.ndarray, threshold: float) -> np.ndarray:
    """Flood fill from the borders over pixels close to the border's median colour."""
    import cv2

    colour = np.median(_border_pixels(rgb), axis=0)
    near = (np.abs(rgb.astype(np.int16) - colour).max(axis=2) <= threshold).astype(np.uint8)
    _, labels = cv2.connectedComponents(near, connectivity=4)
    edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, edge_labels) & near.astype(bool)
    return _drop_specks(~background)


def _grabcut_mask(rgb: np.ndarray, iterations: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    factor = min(1.0, _GRABCUT_MAX_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(8, round(w * factor)), max(8, round(h * factor))), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    mx, my = max(1, round(sw * 0.04)), max(1, round(sh * 0.04))
    gc_mask = np.zeros((sh, sw), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(
            np.ascontiguousarray(small[..., ::-1]), gc_mask, (mx, my, sw - 2 * mx, sh - 2 * my), bgd, fgd,
            max(1, iterations), cv2.GC_INIT_WITH_RECT,
        )
    except cv2.error as e:  # e.g. a constant image: GMMs cannot be fitted
        raise _no_foreground("grabcut", f"GrabCut failed: {e.err}") from None
    fg = np.isin(gc_mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    if (sh, sw) != (h, w):
        fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST)
    return _drop_specks(fg.astype(bool))


def _drop_specks(mask: np.ndarray, min_fraction: float = 0.01) -> np.ndarray:
    """Remove foreground components smaller than ``min_fraction`` of the largest one."""
    import cv2

    if not mask.any():
        return mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= max(1.0, min_fraction * areas.max())) + 1
    return np.isin(labels, keep)


def _rembg_mask(image: Image.Image) -> np.ndarray:
    try:
        import rembg
    except ImportError:
        raise MissingDependencyError(
            "method='rembg' needs the optional package 'rembg' (pip install 'zero123[rembg]'); "
            "use method='auto', 'threshold' or 'grabcut' to segment without it"
        ) from None
    cut = rembg.remove(image.convert("RGB"))
    return np.asarray(cut.convert("RGBA"))[..., 3] > ALPHA_THRESHOLD
