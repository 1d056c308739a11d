"""Zero-1-to-3 guidance for score distillation (SDS): how should this render look from its camera?

:class:`Zero123Guidance` wraps a :class:`zero123.Zero123Pipeline` through its seams only:

* the input image is encoded ONCE (:meth:`Zero123Pipeline.encode_image`);
* renders ``(B, 3, H, W)`` in [0, 1] are resized to the model's size and VAE-encoded WITH
  gradients to scaled latents ``z = vae.encode(2 x - 1).mode() * scaling_factor``
  (:meth:`Zero123Guidance.encode_renders`);
* the relative camera of each render comes from the camera core
  (:func:`zero123.camera.relative_pose_embedding` of the input and render world-to-camera matrices,
  either embedding kind: ``"relative_radius"`` or Stable Zero123's ``"cond_polar"``);
* the guided noise prediction is :meth:`Zero123Pipeline.predict_noise` (classifier-free guidance
  with the zero token and zero concat latent; a v-prediction model's output is converted to eps).

The SDS gradient on the latents for a timestep ``t`` and a noise draw ``eps`` is
``grad = w(t) * (eps_hat(z_t; t, T) - eps)`` with ``z_t = sqrt(a_t) z + sqrt(1 - a_t) eps`` and
``w(t) = 1 - a_t`` (``a_t`` = alpha_bar). It is applied through the loss
``0.5 * ||z - stopgrad(z - grad)||^2 / B`` whose gradient on ``z`` is ``grad / B``
(docs/conventions.md, "3D practice"). Non-finite gradient entries are zeroed (the NaN guard) and
counted. The timestep is drawn uniformly from a range that is annealed linearly from
``t_start`` to ``t_end`` over ``anneal_steps`` optimisation steps (fractions of the training
timesteps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..camera import relative_pose_embedding


def _fraction_range(name: str, value) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not (0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"guidance {name} must be (low, high) fractions of the training timesteps with 0 <= low <= high <= 1, got {value!r}")
    return lo, hi


@dataclass(frozen=True)
class GuidanceSettings:
    """How :class:`Zero123Guidance` scores renders.

    Attributes:
        guidance_scale: classifier-free guidance scale (1 = the conditional branch only).
        t_start: ``(low, high)`` timestep range at step 0, as fractions of the training timesteps.
        t_end: the range reached after ``anneal_steps`` steps (linear interpolation; kept after).
        anneal_steps: optimisation steps over which the range moves from ``t_start`` to ``t_end``.
        max_batch: largest U-Net batch per call (None: all at once).
    """

    guidance_scale: float = 3.0
    t_start: tuple[float, float] = (0.4, 0.85)
    t_end: tuple[float, float] = (0.2, 0.5)
    anneal_steps: int = 200
    max_batch: int | None = None

    def __post_init__(self):
        g = self.guidance_scale
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not math.isfinite(g) or g < 0:
            raise ValueError(f"guidance (the classifier-free guidance scale) must be a finite number >= 0 (about 3 for SDS), got {g!r}")
        object.__setattr__(self, "t_start", _fraction_range("t_start", self.t_start))
        object.__setattr__(self, "t_end", _fraction_range("t_end", self.t_end))
        if isinstance(self.anneal_steps, bool) or not isinstance(self.anneal_steps, int) or self.anneal_steps < 0:
            raise ValueError(f"guidance anneal_steps must be an integer >= 0, got {self.anneal_steps!r}")
        if self.max_batch is not None and (isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int) or self.max_batch < 1):
            raise ValueError(f"guidance max_batch must be a positive integer or None, got {self.max_batch!r}")


#: threestudio's Stable Zero123 range (docs/conventions.md, "3D practice").
STABLE_ZERO123_T_RANGES = ((0.7, 0.98), (0.3, 0.8))


@dataclass
class SDSOutput:
    """One guidance evaluation.

    Attributes:
        loss: scalar; its gradient on ``latents`` is ``grad / B``.
        latents: ``(B, 4, h, w)`` the renders' scaled latents (in the autograd graph).
        grad: ``(B, 4, h, w)`` ``w(t) * (eps_hat - eps)`` after the NaN guard (detached).
        timesteps: ``(B,)`` int64 timesteps used.
        nonfinite: how many gradient entries the NaN guard zeroed.
    """

    loss: torch.Tensor
    latents: torch.Tensor
    grad: torch.Tensor
    timesteps: torch.Tensor
    nonfinite: int = 0


class Zero123Guidance:
    """Score distillation with a Zero-1-to-3 pipeline, for one input image.

    Args:
        pipe: a :class:`zero123.Zero123Pipeline` (its weights are frozen here).
        image: the input view as ``(1, 3, S, S)`` in [-1, 1] (:meth:`Zero123Pipeline.image_to_tensor`)
            or anything that method reads (PIL image, path, array).
        input_world_to_cam: ``(3, 4)`` world-to-camera matrix of the input view (Blender camera
            axes); every render's relative camera is measured from it. Its elevation is the
            ``cond_elevation`` of a ``"cond_polar"`` model.
        settings: :class:`GuidanceSettings`.
    """

    def __init__(self, pipe, image, input_world_to_cam, settings: GuidanceSettings = GuidanceSettings()):
        if not isinstance(settings, GuidanceSettings):
            raise TypeError(f"settings must be GuidanceSettings, got {type(settings).__name__}")
        self.pipe = pipe
        self.settings = settings
        self.kind = pipe.camera_embedding
        self.input_world_to_cam = torch.as_tensor(np.asarray(input_world_to_cam, dtype=np.float64))[:3]
        relative_pose_embedding(self.input_world_to_cam, self.input_world_to_cam, self.kind)  # checks the matrix
        for module in self._modules():
            module.requires_grad_(False)
        self.alphas_cumprod = pipe.scheduler.alphas_cumprod.to(torch.float32)
        self.num_train_timesteps = int(len(self.alphas_cumprod))
        with torch.no_grad():
            x = image if isinstance(image, torch.Tensor) and image.ndim == 4 else pipe.image_to_tensor(image)
            self.conditioning = pipe.encode_image(x)

    def _modules(self):
        return [m for m in (getattr(self.pipe, n, None) for n in ("vae", "unet", "image_encoder", "cc_projection"))
                if isinstance(m, torch.nn.Module)]

    # ------------------------------------------------------------------ pieces
    def poses(self, world_to_cams) -> torch.Tensor:
        """``(B, 4)`` camera vectors T of renders at ``(B, 3, 4)`` world-to-camera matrices, from the input view."""
        target = torch.as_tensor(np.asarray(world_to_cams, dtype=np.float64)) if not isinstance(world_to_cams, torch.Tensor) else world_to_cams
        target = target.reshape(-1, 3, 4).double()
        return relative_pose_embedding(self.input_world_to_cam.expand(len(target), 3, 4), target, self.kind)

    def encode_renders(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable: renders ``(B, 3, H, W)`` in [0, 1] -> scaled latents ``(B, 4, h, w)`` at
        the model's resolution (bilinear resize, then the VAE posterior mode times the scaling factor)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"renders must be (B, 3, H, W) in [0, 1], got {tuple(images.shape)}")
        s = self.pipe.image_size
        x = images if images.shape[-1] == s and images.shape[-2] == s else F.interpolate(images, (s, s), mode="bilinear", align_corners=False)
        vae = self.pipe.vae
        z = vae.encode((x * 2 - 1).to(vae.dtype)).latent_dist.mode()
        return z * vae.config.scaling_factor

    def timestep_range(self, step: int) -> tuple[int, int]:
        """``(t_low, t_high)`` integer timesteps at optimisation ``step`` (linear annealing)."""
        s = self.settings
        k = 1.0 if s.anneal_steps == 0 else min(max(step, 0) / s.anneal_steps, 1.0)
        lo = s.t_start[0] + k * (s.t_end[0] - s.t_start[0])
        hi = s.t_start[1] + k * (s.t_end[1] - s.t_start[1])
        n = self.num_train_timesteps
        t_lo = min(max(int(round(lo * n)), 1), n - 1)
        return t_lo, min(max(int(round(hi * n)), t_lo), n - 1)

    def sample_timesteps(self, batch: int, step: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(B,)`` int64 timesteps drawn uniformly from :meth:`timestep_range` ``(step)``."""
        lo, hi = self.timestep_range(step)
        return torch.randint(lo, hi + 1, (batch,), generator=generator)

    @torch.no_grad()
    def gradient(self, latents: torch.Tensor, poses: torch.Tensor, timesteps: torch.Tensor,
                 noise: torch.Tensor) -> tuple[torch.Tensor, int]:
        """``(w(t) * (eps_hat - noise), nonfinite count)`` for latents ``(B, 4, h, w)`` (no graph).

        ``eps_hat`` is the guided noise prediction at ``z_t = sqrt(a_t) z + sqrt(1 - a_t) noise``.
        """
        a = self.alphas_cumprod.to(latents.device)[timesteps.to(latents.device)].view(-1, 1, 1, 1)
        z = latents.detach().float()
        noisy = a.sqrt() * z + (1 - a).sqrt() * noise
        eps_hat = self.pipe.predict_noise(noisy.to(latents.dtype), timesteps.to(latents.device), self.conditioning,
                                          poses.to(latents.device), self.settings.guidance_scale, self.settings.max_batch)
        grad = (1 - a) * (eps_hat.float() - noise)
        bad = ~torch.isfinite(grad)
        count = int(bad.sum())
        if count:
            grad = torch.where(bad, torch.zeros_like(grad), grad)
        return grad.to(latents.dtype), count

    # ------------------------------------------------------------------ the SDS loss
    def __call__(self, images: torch.Tensor, world_to_cams, step: int = 0, *, generator: torch.Generator | None = None,
                 timesteps: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> SDSOutput:
        """SDS loss of renders ``(B, 3, H, W)`` in [0, 1] seen from ``(B, 3, 4)`` world-to-camera matrices.

        ``timesteps`` ``(B,)`` and ``noise`` ``(B, 4, h, w)`` override the random draws (tests).
        """
        # 1. Differentiable encode of the renders, their relative cameras
        latents = self.encode_renders(images)
        b = latents.shape[0]
        poses = self.poses(world_to_cams)
        if poses.shape[0] != b:
            raise ValueError(f"got {b} renders but {poses.shape[0]} cameras")
        # 2. Timesteps from the annealed range, a noise draw
        t = self.sample_timesteps(b, step, generator) if timesteps is None else torch.as_tensor(timesteps).long().reshape(b)
        if noise is None:
            noise = torch.randn(latents.shape, generator=generator).to(latents.device)
        # 3. The SDS gradient (guarded) and the surrogate loss whose gradient on the latents is grad / B
        grad, bad = self.gradient(latents, poses, t, noise.float())
        target = (latents - grad).detach()
        loss = 0.5 * F.mse_loss(latents, target, reduction="sum") / b
        return SDSOutput(loss, latents, grad, t, bad)
