"""Builders of randomly initialised Zero123 components, by preset.

``full`` is the released architecture (docs/conventions.md, Network: ~860M-parameter U-Net, SD KL-f8 VAE,
CLIP ViT-L/14 vision tower); ``tiny`` is a few-hundred-kilobyte model for tests and development.
Configs are plain constructor keyword arguments, so each preset is data.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from ..camera import CameraEmbedding

Preset = Literal["tiny", "small", "full"]

#: DDIM scheduler config of the original release (docs/conventions.md, Sampling).
SCHEDULER_CONFIG: dict[str, Any] = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    timestep_spacing="leading",
    prediction_type="epsilon",
)

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "unet": dict(
            sample_size=32,
            in_channels=8,
            out_channels=4,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=768,
            attention_head_dim=8,
            use_linear_projection=False,
        ),
        "vae": dict(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            latent_channels=4,
            sample_size=256,
            scaling_factor=0.18215,
        ),
        "image_encoder": dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=224,
            patch_size=14,
            projection_dim=768,
            hidden_act="quick_gelu",
        ),
        "cc_projection": dict(embed_dim=768, pose_dim=4, cross_attention_dim=768),
    },
    "small": {
        # The bundled from-scratch model (configs/small-from-scratch.yaml): 64x64 images, VAE
        # factor 4 (16x16x4 latents), ~7M-parameter U-Net without self-attention at the top
        # resolution, a 4-layer ViT image encoder trained jointly.
        "unet": dict(
            sample_size=16,
            in_channels=8,
            out_channels=4,
            block_out_channels=(64, 128, 128),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=128,
            attention_head_dim=8,
            norm_num_groups=32,
            use_linear_projection=False,
        ),
        "vae": dict(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 3,
            up_block_types=("UpDecoderBlock2D",) * 3,
            block_out_channels=(16, 32, 64),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=8,
            sample_size=64,
            scaling_factor=0.18215,
        ),
        "image_encoder": dict(
            hidden_size=128,
            intermediate_size=512,
            num_hidden_layers=4,
            num_attention_heads=4,
            image_size=64,
            patch_size=8,
            projection_dim=128,
            hidden_act="quick_gelu",
        ),
        "cc_projection": dict(embed_dim=128, pose_dim=4, cross_attention_dim=128),
    },
    "tiny": {
        # 64x64 images, 8x8 latents; no self-attention at the top U-Net resolution.
        "unet": dict(
            sample_size=8,
            in_channels=8,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=4,
            norm_num_groups=8,
            use_linear_projection=False,
        ),
        "vae": dict(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(8, 16, 16, 16),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=8,
            sample_size=64,
            scaling_factor=0.18215,
        ),
        "image_encoder": dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
            projection_dim=32,
            hidden_act="quick_gelu",
        ),
        "cc_projection": dict(embed_dim=32, pose_dim=4, cross_attention_dim=32),
    },
}


def build_components(
    preset: Preset = "tiny",
    *,
    seed: int | None = 0,
    camera_embedding: CameraEmbedding = "relative_radius",
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Randomly initialised pipeline components for ``preset``.

    Returns a dict with keys ``vae``, ``image_encoder``, ``unet``, ``scheduler``, ``cc_projection``
    (the keyword arguments of :class:`zero123.Zero123Pipeline`). ``overrides`` updates the
    constructor arguments of a component, e.g. ``{"unet": {"block_out_channels": (64, 128)}}``.
    """
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from .cc_projection import CCProjection

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    cfg = {k: dict(v) for k, v in PRESETS[preset].items()}
    for name, upd in (overrides or {}).items():
        if name not in cfg:
            raise ValueError(f"overrides: unknown component {name!r}; expected one of {sorted(cfg)}")
        cfg[name].update(upd)

    if seed is not None:
        torch.manual_seed(seed)
    unet = UNet2DConditionModel(**cfg["unet"])
    vae = AutoencoderKL(**cfg["vae"])
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**cfg["image_encoder"]))
    cc_projection = CCProjection(**cfg["cc_projection"], camera_embedding=camera_embedding)
    scheduler = DDIMScheduler(**SCHEDULER_CONFIG)
    return dict(vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler, cc_projection=cc_projection)
