"""Classifier-free-guidance dropout used in training (docs/conventions.md, Conditioning).

One uniform ``r`` per sample:

====================  ==========================  ==================
``r``                 CLIP embedding              concat latent
====================  ==========================  ==================
``[0, 0.05)``         zeroed (before projection)  kept
``[0.05, 0.10)``      zeroed                      zeroed
``[0.10, 0.15)``      kept                        zeroed
``[0.15, 1)``         kept                        kept
====================  ==========================  ==================

The pose T is never dropped: it is appended to the (possibly zero) CLIP embedding before
``cc_projection``. (At inference the unconditional branch zeroes the token AFTER the projection;
the two nulls differ on purpose.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DropoutMasks:
    """Per-sample booleans, shape ``(B,)``: which samples lose their CLIP embedding / concat latent."""

    drop_clip: torch.Tensor
    drop_concat: torch.Tensor


def dropout_masks(
    r: torch.Tensor,  # (B,) uniform in [0, 1)
    p_clip_only: float = 0.05,
    p_both: float = 0.05,
    p_concat_only: float = 0.05,
) -> DropoutMasks:
    """Masks from the per-sample uniforms ``r`` with the interval layout above."""
    a = p_clip_only
    b = a + p_both
    c = b + p_concat_only
    return DropoutMasks(drop_clip=r < b, drop_concat=(r >= a) & (r < c))


def apply_cfg_dropout(
    image_embeds: torch.Tensor,  # (B, D)
    concat_latents: torch.Tensor,  # (B, 4, h, w)
    masks: DropoutMasks,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero the CLIP embeddings and concat latents selected by ``masks`` (returns new tensors)."""
    keep_clip = (~masks.drop_clip).to(image_embeds.dtype).view(-1, *([1] * (image_embeds.ndim - 1)))
    keep_concat = (~masks.drop_concat).to(concat_latents.dtype).view(-1, *([1] * (concat_latents.ndim - 1)))
    return image_embeds * keep_clip, concat_latents * keep_concat
