"""``cc_projection``: the camera-conditioned projection of Zero-1-to-3 (docs/conventions.md, Network).

It maps ``concat(CLIP image embedding (D), T (4))`` to ONE cross-attention token.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..camera import CAMERA_EMBEDDINGS, CameraEmbedding


class CCProjection(ModelMixin, ConfigMixin):
    """Linear(``embed_dim + pose_dim`` -> ``cross_attention_dim``) giving one token per view.

    Args:
        embed_dim: size of the image encoder's projected embedding (768 for CLIP ViT-L/14).
        pose_dim: size of the camera vector T (4).
        cross_attention_dim: the U-Net's cross-attention width (768).
        camera_embedding: what the 4th slot of T holds: ``"relative_radius"`` (Zero-1-to-3,
            d_radius) or ``"cond_polar"`` (Stable Zero123, the input view's absolute polar angle).
    """

    @register_to_config
    def __init__(
        self,
        embed_dim: int = 768,
        pose_dim: int = 4,
        cross_attention_dim: int = 768,
        camera_embedding: CameraEmbedding = "relative_radius",
    ):
        super().__init__()
        if camera_embedding not in CAMERA_EMBEDDINGS:
            raise ValueError(f"camera_embedding must be one of {CAMERA_EMBEDDINGS}, got {camera_embedding!r}")
        self.proj = nn.Linear(embed_dim + pose_dim, cross_attention_dim)

    def init_identity(self) -> None:
        """Training-from-scratch init (docs/conventions.md, Network): identity on the first ``embed_dim`` input
        columns, bias 0; the pose columns keep PyTorch's default init."""
        e = self.config.embed_dim
        with torch.no_grad():
            self.proj.weight[:, :e].zero_()
            n = min(e, self.config.cross_attention_dim)
            self.proj.weight[:n, :n] += torch.eye(n, dtype=self.proj.weight.dtype)
            self.proj.bias.zero_()

    def forward(self, image_embeds: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """
        Args:
            image_embeds: ``(B, embed_dim)`` projected image embedding (not L2-normalised).
            pose: ``(B, pose_dim)`` camera vectors T.

        Returns:
            ``(B, 1, cross_attention_dim)`` the single cross-attention token.
        """
        x = torch.cat([image_embeds, pose.to(image_embeds.dtype)], dim=-1)
        return self.proj(x).unsqueeze(1)
