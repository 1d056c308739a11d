"""Loading diffusers-style folders without remote code (docs/conventions.md, Checkpoint formats).

Both community layouts keep standard ``unet``, ``vae`` and ``image_encoder`` subfolders (loaded
with the diffusers / transformers classes directly, ``.bin`` or safetensors) and differ only in
the camera projection: layout A (kxic) ``cc_projection`` with ``projection.{weight,bias}``,
layout B (bennyguo, ashawkey) ``clip_camera_projection`` with ``proj.{weight,bias}``.
Our own folder stores ``cc_projection`` as :class:`~zero123.models.cc_projection.CCProjection`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .build import assign_state_dict
from .detect import CheckpointFormat

#: subfolder and weight-name prefix of the camera projection, per layout
PROJECTION_LAYOUT: dict[str, tuple[str, str]] = {
    "diffusers_a": ("cc_projection", "projection."),
    "diffusers_b": ("clip_camera_projection", "proj."),
    "zero123": ("cc_projection", "proj."),
}
WEIGHT_FILES = (
    "diffusion_pytorch_model.safetensors",
    "model.safetensors",
    "diffusion_pytorch_model.bin",
    "pytorch_model.bin",
)


def _require(folder: Path, sub: str) -> Path:
    path = folder / sub
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"folder {str(folder)!r} is missing component {sub!r} (expected {str(path / 'config.json')!r})")
    return path


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            try:
                if path.suffix == ".safetensors":
                    return load_file(str(path))
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:
                raise ValueError(f"{str(path)!r} is truncated or corrupt: {type(e).__name__}: {e}") from None
    raise FileNotFoundError(f"{str(folder)!r} has no weights file (looked for {', '.join(WEIGHT_FILES)})")


def stored_dtype(folder: Path, sub: str) -> str | None:
    """The floating dtype most of a component's stored weights have (``"float16"``, ...), read from
    the weight file itself (the safetensors header; a ``.bin`` file is memory-mapped), or ``None`` when
    the component has no weights file. Loading may cast; this says what is on disk."""
    from collections import Counter

    names = {"F16": "float16", "F32": "float32", "BF16": "bfloat16", "F64": "float64"}
    for name in WEIGHT_FILES:
        path = folder / sub / name
        if not path.is_file():
            continue
        counts: Counter = Counter()
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    kind = f.get_slice(key).get_dtype()
                    if kind in names:
                        counts[names[kind]] += 1
        else:
            weights = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            counts.update(str(v.dtype).replace("torch.", "") for v in weights.values()
                          if isinstance(v, torch.Tensor) and v.is_floating_point())
        return counts.most_common(1)[0][0] if counts else None
    return None


def read_projection(folder: Path, layout: CheckpointFormat) -> dict[str, torch.Tensor]:
    """The camera projection's ``{"weight", "bias"}`` from a diffusers folder of ``layout``."""
    sub, prefix = PROJECTION_LAYOUT[layout]
    weights = _read_weights(_require(folder, sub))
    found = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    extra = sorted(k for k in weights if not k.startswith(prefix))
    if set(found) != {"weight", "bias"} or extra:
        raise ValueError(
            f"{str(folder / sub)!r}: expected exactly {prefix}weight and {prefix}bias for layout {layout}, "
            f"found {sorted(weights)}"
        )
    return found


def load_folder_components(
    folder: Path, layout: CheckpointFormat, *, camera_embedding: str, dtype: torch.dtype
) -> dict[str, Any]:
    """Components dict from a diffusers folder of ``layout`` (``zero123``, ``diffusers_a`` or ``diffusers_b``)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPVisionModelWithProjection

    from ..models.cc_projection import CCProjection
    from ..models.factory import SCHEDULER_CONFIG

    # 1. Check every component is there before loading anything.
    for sub in ("unet", "vae", "image_encoder", PROJECTION_LAYOUT[layout][0]):
        _require(folder, sub)
    # 2. Standard components with their own library classes (no remote code).
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype)
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype)
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(folder / "image_encoder", dtype=dtype)
    # 3. Camera projection.
    proj = read_projection(folder, layout)
    out_dim, in_dim = proj["weight"].shape
    embed_dim = image_encoder.config.projection_dim
    if layout == "zero123":
        cfg = json.loads((folder / "cc_projection" / "config.json").read_text())
        camera_embedding = cfg.get("camera_embedding", camera_embedding)
    cc = CCProjection(embed_dim=embed_dim, pose_dim=in_dim - embed_dim, cross_attention_dim=out_dim,
                      camera_embedding=camera_embedding)
    assign_state_dict(cc, {"proj.weight": proj["weight"], "proj.bias": proj["bias"]}, "cc_projection", dtype)
    # 4. Scheduler: ours keeps its saved config; the community layouts get the original DDIM config.
    if layout == "zero123" and (folder / "scheduler" / "scheduler_config.json").is_file():
        scheduler = DDIMScheduler.from_pretrained(folder, subfolder="scheduler")
    else:
        scheduler = DDIMScheduler(**SCHEDULER_CONFIG)
    return dict(vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler, cc_projection=cc.eval())
