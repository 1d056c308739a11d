"""Where a training run's weights start (docs/conventions.md, Network and Training recipe).

* ``scratch``: random components of a factory preset, ``cc_projection`` set to the identity on the
  embedding columns (:meth:`CCProjection.init_identity`).
* ``zero123``: any model :func:`zero123.loading.load_pipeline` loads (``bundled``, our folders, the
  diffusers layouts, original ``.safetensors`` files; a Lightning ``.ckpt`` after ``zero123 convert``).
* ``sd_image_variations``: a Stable-Diffusion-image-variations-style folder (``unet/``, ``vae/``,
  ``image_encoder/``): the U-Net's ``conv_in`` is widened from 4 to 8 input channels with the new
  (concat-latent) channels zero, so the widened network first computes exactly what it did before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import ModelConfig


def widen_conv_in(unet, in_channels: int = 8) -> None:
    """Give ``unet.conv_in`` ``in_channels`` inputs; the extra input channels get zero weights."""
    old = unet.conv_in
    if old.in_channels == in_channels:
        return
    if old.in_channels > in_channels:
        raise ValueError(f"conv_in already has {old.in_channels} input channels (> {in_channels})")
    new = nn.Conv2d(
        in_channels, old.out_channels, kernel_size=old.kernel_size, stride=old.stride, padding=old.padding,
        bias=old.bias is not None, dtype=old.weight.dtype, device=old.weight.device,
    )
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        if old.bias is not None:
            new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=in_channels)


def _load_sd_image_variations(path: Path, camera_embedding: str) -> dict[str, Any]:
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPVisionModelWithProjection

    from ..models.cc_projection import CCProjection
    from ..models.factory import SCHEDULER_CONFIG

    for sub in ("unet", "vae", "image_encoder"):
        if not (path / sub).is_dir():
            raise FileNotFoundError(
                f"model.init_path {str(path)!r} is not a Stable-Diffusion-image-variations folder: missing {sub}/"
            )
    unet = UNet2DConditionModel.from_pretrained(path / "unet")
    widen_conv_in(unet, 8)
    vae = AutoencoderKL.from_pretrained(path / "vae")
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(path / "image_encoder")
    cc = CCProjection(
        embed_dim=image_encoder.config.projection_dim,
        pose_dim=4,
        cross_attention_dim=unet.config.cross_attention_dim,
        camera_embedding=camera_embedding,
    )
    cc.init_identity()
    return dict(vae=vae, image_encoder=image_encoder, unet=unet, scheduler=DDIMScheduler(**SCHEDULER_CONFIG), cc_projection=cc)


def initial_components(model: ModelConfig, *, seed: int = 0) -> dict[str, Any]:
    """The five pipeline components a run starts from (keys as ``Zero123Pipeline``'s arguments);
    the scheduler carries ``model.prediction_type``."""
    from diffusers import DDIMScheduler

    comps = _initial_components(model, seed=seed)
    comps["scheduler"] = DDIMScheduler.from_config(comps["scheduler"].config, prediction_type=model.prediction_type)
    return comps


def _initial_components(model: ModelConfig, *, seed: int = 0) -> dict[str, Any]:
    if model.init == "scratch":
        from ..models.factory import build_components

        comps = build_components(model.preset, seed=seed, camera_embedding=model.camera_embedding, overrides=model.overrides)
        comps["cc_projection"].init_identity()
        if model.vae_path:
            from diffusers import AutoencoderKL

            p = Path(model.vae_path)
            if not p.is_dir():
                raise FileNotFoundError(f"model.vae_path: no such folder {str(p)!r}")
            comps["vae"] = AutoencoderKL.from_pretrained(p / "vae" if (p / "vae").is_dir() else p)
        return comps
    path = Path(model.init_path)
    if model.init == "sd_image_variations":
        return _load_sd_image_variations(path, model.camera_embedding)
    from ..loading import load_pipeline

    pipe = load_pipeline(model.init_path, device="cpu", dtype="fp32")  # the one loading path; accelerate moves it
    return {k: getattr(pipe, k) for k in ("vae", "image_encoder", "unet", "scheduler", "cc_projection")}
