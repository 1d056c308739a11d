"""Image metrics for novel-view evaluation (docs/conventions.md, Evaluation protocols): PSNR, SSIM, mask IoU and optional LPIPS.

Every metric takes two RGB images of the same shape ``(H, W, 3)`` as float arrays with values in
``[0, 1]`` (data range 1.0), already composited on white and resized to the protocol's declared
resolution (see :mod:`zero123.eval.protocols`). ``uint8`` arrays and PIL images are accepted and
converted with :func:`to_float_image`.

* PSNR = ``10 log10(1 / MSE)`` over all pixels and channels; ``inf`` when the images are equal.
* SSIM = scikit-image's :func:`skimage.metrics.structural_similarity` with ``data_range=1.0``,
  ``channel_axis=-1`` and its defaults otherwise (7x7 uniform window, K1=0.01, K2=0.03, no
  Gaussian weighting), i.e. the mean of the per-channel SSIM maps. This is the implementation the
  SyncDreamer evaluation used.
* Mask IoU = silhouette agreement: foreground is every pixel that is not near-white, i.e. whose
  largest channel distance from white ``max_c(1 - x_c)`` is above ``FOREGROUND_THRESHOLD`` (0.1,
  about 25 of 255 levels; the same cut as the 3D route's silhouettes). IoU = |pred & target| /
  |pred | target|, and 1.0 when both masks are empty.
* LPIPS needs the ``lpips`` package (which needs torchvision) and ImageNet backbone weights in the
  torch hub cache. Neither is a dependency of zero123: :func:`load_lpips` returns ``None`` and a
  one-line note saying what is missing, and reports carry that note instead of a number.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from pathlib import Path
from typing import Callable, Literal

import numpy as np

LpipsBackbone = Literal["vgg", "alex", "squeeze"]
LPIPS_BACKBONES: tuple[str, ...] = ("vgg", "alex", "squeeze")

#: torchvision's ImageNet weight files that ``lpips.LPIPS(net=...)`` loads from the torch hub cache.
LPIPS_BACKBONE_FILES: dict[str, str] = {
    "vgg": "vgg16-397923af.pth",
    "alex": "alexnet-owt-7be5be79.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}

SSIM_NOTE = (
    "skimage.metrics.structural_similarity(data_range=1.0, channel_axis=-1, win_size=7, uniform window)"
)


def to_float_image(image, name: str = "image") -> np.ndarray:
    """``(H, W, 3)`` float64 array in ``[0, 1]`` from a float array in [0, 1], a uint8 array or an
    RGB PIL image. Raises ValueError/TypeError naming ``name`` for anything else."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise ValueError(f"{name}: PIL image must be RGB (composite alpha on white first), got mode {image.mode!r}")
        image = np.asarray(image)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or PIL image, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3), got {tuple(image.shape)}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"{name} must be float in [0, 1] or uint8, got dtype {image.dtype}")
    out = image.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or inf")
    lo, hi = float(out.min()), float(out.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{name} values must be in [0, 1] (data range 1.0), got min {lo:.4g}, max {hi:.4g}")
    return np.clip(out, 0.0, 1.0)


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    p = to_float_image(pred, "pred")
    t = to_float_image(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape, got {p.shape} and {t.shape}")
    return p, t


def psnr(pred, target) -> float:
    """Peak signal-to-noise ratio in dB for data range 1.0: ``10 log10(1 / MSE)``.

    Returns ``inf`` for identical images.

    >>> a = np.zeros((4, 4, 3)); b = np.full((4, 4, 3), 0.1)
    >>> round(psnr(a, b), 6)  # MSE = 0.01
    20.0
    """
    p, t = _pair(pred, target)
    mse = float(np.mean((p - t) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(1.0 / mse)


def ssim(pred, target) -> float:
    """Structural similarity (scikit-image, data range 1.0, 7x7 uniform window, mean over RGB).

    >>> a = np.full((16, 16, 3), 0.5)
    >>> ssim(a, a)
    1.0
    """
    from skimage.metrics import structural_similarity

    p, t = _pair(pred, target)
    if min(p.shape[:2]) < 7:
        raise ValueError(f"ssim needs images of at least 7x7 pixels (its window), got {p.shape[:2]}")
    return float(structural_similarity(t, p, data_range=1.0, channel_axis=-1))


# ---------------------------------------------------------------------------------------- mask IoU
#: A pixel is foreground when its largest channel distance from white exceeds this (data range 1.0).
FOREGROUND_THRESHOLD = 0.1

MASK_IOU_NOTE = (
    f"mask IoU: foreground = largest channel distance from white > {FOREGROUND_THRESHOLD} "
    "(not near-white); IoU 1.0 when both masks are empty"
)


def foreground_mask(image, threshold: float = FOREGROUND_THRESHOLD, name: str = "image") -> np.ndarray:
    """``(H, W)`` bool silhouette of an image on white: ``max_c(1 - x_c) > threshold``.

    >>> im = np.ones((2, 2, 3)); im[0, 0] = [0.95, 1.0, 1.0]; im[1, 1] = [1.0, 0.5, 1.0]
    >>> foreground_mask(im).tolist()
    [[False, False], [False, True]]
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    return (1.0 - to_float_image(image, name)).max(axis=-1) > threshold


def mask_iou(pred, target, threshold: float = FOREGROUND_THRESHOLD) -> float:
    """Intersection over union of the foreground masks (:func:`foreground_mask`) of two images.

    >>> a = np.ones((4, 4, 3)); b = a.copy()
    >>> a[:2] = 0.0; b[:, :2] = 0.0   # top half vs left half: 4 shared of 12 pixels
    >>> round(mask_iou(a, b), 6)
    0.333333
    """
    p, t = _pair(pred, target)
    mp, mt = foreground_mask(p, threshold, "pred"), foreground_mask(t, threshold, "target")
    union = int(np.count_nonzero(mp | mt))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(mp & mt)) / union


# ---------------------------------------------------------------------------------------- LPIPS
LpipsFn = Callable[[np.ndarray, np.ndarray], float]


def lpips_availability(backbone: LpipsBackbone = "vgg") -> tuple[bool, str]:
    """Whether LPIPS with ``backbone`` can run offline, and a one-line note saying why not.

    Needs: the ``lpips`` package importable, and torchvision's ImageNet weights for the backbone
    (``LPIPS_BACKBONE_FILES``) in ``<torch hub dir>/checkpoints``. Nothing is downloaded.
    """
    if backbone not in LPIPS_BACKBONES:
        raise ValueError(f"lpips backbone must be one of {LPIPS_BACKBONES}, got {backbone!r}")
    if importlib.util.find_spec("lpips") is None:
        return False, (
            f"LPIPS ({backbone}) skipped: the 'lpips' package is not installed (it needs torchvision; "
            "install both, and put the backbone weights in the torch hub cache, to report LPIPS)"
        )
    import torch

    weights = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONE_FILES[backbone]
    if not weights.is_file():
        return False, f"LPIPS ({backbone}) skipped: backbone weights not found at {weights} (no download attempted)"
    return True, f"LPIPS ({backbone}) computed with the lpips package, inputs mapped to [-1, 1]"


def load_lpips(backbone: LpipsBackbone = "vgg", device: str = "cpu") -> tuple[LpipsFn | None, str]:
    """``(fn, note)``: ``fn(pred, target) -> float`` when LPIPS is available offline, else ``None``.

    ``note`` is the sentence a report prints about LPIPS (which backbone, or why it was skipped).
    """
    ok, note = lpips_availability(backbone)
    if not ok:
        return None, note
    import torch

    lpips = importlib.import_module("lpips")
    try:
        model = lpips.LPIPS(net=backbone, verbose=False).to(device).eval()
    except Exception as exc:  # a broken install must not sink a whole evaluation
        return None, f"LPIPS ({backbone}) skipped: lpips.LPIPS(net={backbone!r}) failed: {type(exc).__name__}: {exc}"

    def fn(pred, target) -> float:
        p, t = _pair(pred, target)
        to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float().to(device) * 2.0 - 1.0  # noqa: E731
        with torch.no_grad():
            return float(model(to_t(p), to_t(t)).reshape(-1)[0])

    return fn, note
