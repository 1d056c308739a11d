"""The SDS gradient of :class:`zero123.threed.guidance.Zero123Guidance` against a reference computed
here from the raw U-Net: ``d loss / d latents = w(t) (eps_hat - eps) / B`` with ``w = 1 - alpha_bar``,
for both camera embeddings, epsilon and v-prediction models, guidance on and off."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from zero123.camera import world_to_cam_from_spherical
from zero123.models.factory import SCHEDULER_CONFIG, build_components
from zero123.pipeline import Zero123Pipeline
from zero123.threed.guidance import GuidanceSettings, Zero123Guidance


def tiny_pipe(kind: str, prediction: str = "epsilon") -> Zero123Pipeline:
    comps = build_components("tiny", seed=0, camera_embedding=kind)
    comps["scheduler"] = DDIMScheduler(**{**SCHEDULER_CONFIG, "prediction_type": prediction})
    pipe = Zero123Pipeline(**comps)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def reference_eps(pipe, cond, noisy, t, poses, scale):
    """Guided eps from the raw U-Net: zero token / zero concat latent unconditional branch, v -> eps."""
    tokens = pipe.cc_projection(cond.image_embeds.expand(len(noisy), -1), poses)
    concat = cond.concat_latents.expand(len(noisy), -1, -1, -1)
    out_c = pipe.unet(torch.cat([noisy, concat], 1), t, encoder_hidden_states=tokens).sample
    out_u = pipe.unet(torch.cat([noisy, torch.zeros_like(concat)], 1), t, encoder_hidden_states=torch.zeros_like(tokens)).sample
    out = out_u + scale * (out_c - out_u)
    if pipe.prediction_type == "v_prediction":
        a = pipe.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        out = a.sqrt() * out + (1 - a).sqrt() * noisy
    return out


@pytest.mark.parametrize("kind,prediction", [("relative_radius", "epsilon"), ("cond_polar", "epsilon"),
                                             ("relative_radius", "v_prediction")])
@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_gradient_on_latents_is_weighted_noise_residual(kind, prediction, scale, tiny_image):
    pipe = tiny_pipe(kind, prediction)
    w2c_in = world_to_cam_from_spherical(math.radians(70), 0.0, 1.85)
    guidance = Zero123Guidance(pipe, tiny_image, w2c_in, GuidanceSettings(guidance_scale=scale))
    targets = np.stack([world_to_cam_from_spherical(math.radians(p), math.radians(a), 1.85) for p, a in ((60, 40), (100, -120))])
    gen = torch.Generator().manual_seed(0)
    renders = torch.rand((2, 3, 48, 48), generator=gen, requires_grad=True)
    latents_shape = guidance.encode_renders(renders.detach()).shape
    noise = torch.randn(latents_shape, generator=gen)
    t = torch.tensor([300, 700])

    out = guidance(renders, targets, timesteps=t, noise=noise)
    out.latents.retain_grad()
    out.loss.backward()

    with torch.no_grad():
        z = guidance.encode_renders(renders)
        a = pipe.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * z + (1 - a).sqrt() * noise
        poses = guidance.poses(targets)
        expected = (1 - a) * (reference_eps(pipe, guidance.conditioning, noisy, t, poses, scale) - noise)
    assert out.nonfinite == 0
    torch.testing.assert_close(out.latents.grad, expected / 2, rtol=1e-4, atol=1e-6)
    assert renders.grad is not None and renders.grad.abs().sum() > 0  # the VAE encode is differentiable
    # the camera vectors: threestudio's T from the input (elev 20, az 0) to (elev 30, az 40)
    last = 0.0 if kind == "relative_radius" else math.radians(70)
    torch.testing.assert_close(poses[0], torch.tensor([math.radians(-10), math.sin(math.radians(40)),
                                                       math.cos(math.radians(40)), last]), atol=1e-5, rtol=0)


def test_guidance_changes_the_gradient_and_nan_guard(tiny_image):
    pipe = tiny_pipe("relative_radius")
    w2c = world_to_cam_from_spherical(math.radians(80), 0.0, 1.85)
    renders = torch.rand((1, 3, 64, 64), generator=torch.Generator().manual_seed(1))
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(2))
    grads = [Zero123Guidance(pipe, tiny_image, w2c, GuidanceSettings(guidance_scale=s))(renders, w2c[None], timesteps=torch.tensor([500]), noise=noise).grad
             for s in (1.0, 3.0)]
    assert (grads[0] - grads[1]).abs().max() > 1e-4
    # NaN guard: a poisoned noise entry is zeroed and counted, the rest is finite
    bad = noise.clone()
    bad[0, 0, 0, 0] = float("nan")
    out = Zero123Guidance(pipe, tiny_image, w2c)(renders, w2c[None], timesteps=torch.tensor([500]), noise=bad)
    assert out.nonfinite >= 1 and torch.isfinite(out.grad).all() and torch.isfinite(out.loss)


def test_timestep_annealing_and_bad_settings(tiny_image):
    g = Zero123Guidance(tiny_pipe("relative_radius"), tiny_image, world_to_cam_from_spherical(1.2, 0.0, 1.85),
                        GuidanceSettings(t_start=(0.4, 0.85), t_end=(0.2, 0.5), anneal_steps=200))
    assert g.timestep_range(0) == (400, 850)
    assert g.timestep_range(100) == (300, 675)
    assert g.timestep_range(200) == g.timestep_range(999) == (200, 500)
    t = g.sample_timesteps(256, 0, torch.Generator().manual_seed(0))
    assert int(t.min()) >= 400 and int(t.max()) <= 850
    with pytest.raises(ValueError, match="guidance"):
        GuidanceSettings(guidance_scale=float("nan"))
    with pytest.raises(ValueError, match="t_start"):
        GuidanceSettings(t_start=(0.9, 0.2))
    with pytest.raises(ValueError, match="anneal_steps"):
        GuidanceSettings(anneal_steps=-1)
