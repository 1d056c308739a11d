"""Image preprocessing as the official demo did it (SPEC section 5): pure functions."""

from __future__ import annotations

import numpy as np
from PIL import Image


def composite_on_white(image: Image.Image) -> Image.Image:
    """RGB image with any alpha channel composited over a white background (blended, not
    thresholded). Non-RGB modes (L, P, CMYK, I;16, ...) are converted first."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        arr = np.clip(arr / (65535.0 if arr.max() > 255 else 255.0) * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    return image.convert("RGB")
