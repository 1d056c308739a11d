"""Shared fixtures: tiny random Zero123 models built in the test session (never downloaded).

Fixtures other test files rely on (keep them stable):

* ``tiny_components``: a fresh dict of tiny random components (``build_components("tiny", seed=0)``).
* ``tiny_pipeline``: a fresh :class:`zero123.Zero123Pipeline` on CPU, fp32, progress bar off.
* ``tiny_model_dir``: that pipeline saved once per session with ``save_pretrained`` (a folder
  path); treat it as read-only.
* ``tiny_image``: a 64x64 RGBA PIL image of a coloured disc on a transparent background.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def tiny_components():
    from zero123.models.factory import build_components

    return build_components("tiny", seed=0)


@pytest.fixture
def tiny_pipeline(tiny_components):
    from zero123.pipeline import Zero123Pipeline

    pipe = Zero123Pipeline(**tiny_components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from zero123.models.factory import build_components
    from zero123.pipeline import Zero123Pipeline

    path = tmp_path_factory.mktemp("tiny_model") / "zero123-tiny"
    Zero123Pipeline(**build_components("tiny", seed=0)).save_pretrained(path)
    return path


@pytest.fixture
def tiny_image():
    yy, xx = np.mgrid[:64, :64]
    inside = (yy - 30) ** 2 + (xx - 34) ** 2 < 20**2
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 1] = (xx * 4).astype(np.uint8)
    rgba[..., 2] = (yy * 4).astype(np.uint8)
    rgba[..., 3] = np.where(inside, 255, 0)
    return Image.fromarray(rgba, mode="RGBA")
