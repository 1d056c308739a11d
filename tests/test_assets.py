"""The bundled model and example image shipped inside the package (issue 6): present, small,
loadable offline as a real Zero123, and the default everywhere a model is asked for."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from zero123.assets import BUNDLED_MODEL_DIR, BUNDLED_MODEL_NAME, EXAMPLE_IMAGE
from zero123.cli._common import DEFAULT_MODEL


def test_bundled_model_is_small_and_the_default():
    size = sum(p.stat().st_size for p in BUNDLED_MODEL_DIR.rglob("*") if p.is_file())
    assert size <= 20 * 1024 * 1024, f"bundled model is {size / 2**20:.1f} MiB, the budget is 20 MiB"
    assert list(BUNDLED_MODEL_DIR.rglob("*.safetensors")) and not list(BUNDLED_MODEL_DIR.rglob("*.bin"))
    assert DEFAULT_MODEL == BUNDLED_MODEL_NAME


def test_bundled_model_is_a_real_zero123_and_generates():
    from zero123 import Zero123Pipeline

    pipe = Zero123Pipeline.from_pretrained(BUNDLED_MODEL_NAME)
    pipe.set_progress_bar_config(disable=True)
    # docs/conventions.md, Network: 8-channel U-Net [noisy, concat], one camera-conditioned token
    assert pipe.unet.config.in_channels == 8 and pipe.unet.config.out_channels == 4
    assert pipe.cc_projection.config.pose_dim == 4
    assert pipe.unet.dtype == torch.float32  # stored in float16, loaded as float32
    image = Image.open(EXAMPLE_IMAGE)
    out = pipe(image, [{"azimuth": 90.0}, {"azimuth": 180.0}], num_inference_steps=5,
               generator=[torch.Generator().manual_seed(i) for i in range(2)], output_type="np").images
    assert out.shape == (2, pipe.image_size, pipe.image_size, 3)
    assert np.isfinite(out).all()
    # not a blank image: the object is darker than the white background somewhere
    assert out.min() < 0.6 and out.max() > 0.9


def test_info_reports_the_bundled_model_as_v_prediction():
    """`zero123 info bundled` shows how the bundled model differs from the released ones."""
    from typer.testing import CliRunner

    from zero123.cli.__main__ import app
    from zero123.cli.info import describe

    from zero123.checkpoints.registry import resolve

    assert resolve(BUNDLED_MODEL_NAME) == BUNDLED_MODEL_DIR  # every loading route knows the name
    d = describe(BUNDLED_MODEL_NAME)
    assert d["prediction_type"] == "v_prediction" and d["in_channels"] == 8 and d["image_size"] == 64
    r = CliRunner().invoke(app, ["info", BUNDLED_MODEL_NAME])
    assert r.exit_code == 0 and "predicts: v_prediction" in r.output, r.output
