"""The original Zero-1-to-3 DDIM grid (docs/conventions.md, Sampling) and its diffusers counterpart."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler

from zero123.models.factory import SCHEDULER_CONFIG
from zero123.schedule import (
    alphas_cumprod_float64,
    ddim_previous_offset,
    original_ddim_grid,
    original_ddim_timesteps,
    set_timesteps,
)


def test_original_grid_s10():
    # docs/conventions.md, Sampling: S = 10 runs 9 steps, 801 -> 1 (the noisiest grid entry 901 is dropped)
    assert original_ddim_timesteps(10).tolist() == [801, 701, 601, 501, 401, 301, 201, 101, 1]


def test_original_grid_s50():
    # docs/conventions.md, Sampling: S = 50 runs 49 steps from t = 961 to t = 1
    ts = original_ddim_timesteps(50).tolist()
    assert len(ts) == 49
    assert ts == list(range(961, 0, -20))
    assert original_ddim_grid(50)[-1] == 981  # present in the grid, never sampled


def test_original_grid_s75():
    # docs/conventions.md, Sampling: c = 13, 77 grid entries (1 ... 989); the sampler runs 76 steps from 976
    assert len(original_ddim_grid(75)) == 77
    ts = original_ddim_timesteps(75).tolist()
    assert len(ts) == 76
    assert ts[0] == 976 and ts[-1] == 1
    assert ts == list(range(976, 0, -13))
    assert ddim_previous_offset(75) == 13


@pytest.mark.parametrize("bad", [0, 1, 501, 2.5, True, "50"])
def test_bad_step_counts_rejected(bad):
    with pytest.raises((ValueError, TypeError), match="num_inference_steps"):
        original_ddim_timesteps(bad)


def test_set_timesteps_original_and_diffusers():
    sched = DDIMScheduler(**SCHEDULER_CONFIG)
    ts = set_timesteps(sched, 50, "original")
    assert ts.tolist() == list(range(961, 0, -20))
    # docs/conventions.md, Sampling: diffusers' leading spacing runs 981 ... 1 for S = 50 (one step more)
    ts = set_timesteps(sched, 50, "diffusers")
    assert ts.tolist() == list(range(981, 0, -20))
    # ... and for S = 75 it differs more. docs/conventions.md (Sampling) quotes 74 steps from t = 950; diffusers 0.42's
    # "leading" spacing gives 75 steps 963 ... 1. Either way it is not the original 976 ... 1.
    ts = set_timesteps(sched, 75, "diffusers")
    assert ts[-1].item() == 1 and ts[0].item() in (950, 963) and len(ts) in (74, 75)
    ts = set_timesteps(sched, 75, "original")
    assert len(ts) == 76 and ts[0].item() == 976


def test_original_spacing_needs_ddim():
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    with pytest.raises(ValueError, match="timestep_spacing='diffusers'"):
        set_timesteps(sched, 10, "original")
    with pytest.raises(ValueError, match="timestep_spacing"):
        set_timesteps(sched, 10, "nope")


def _reference_ddim_step(eps, t, x, alphas, prev_offset, eta, noise):
    """DDIM (Song et al. eq. 12 and 16) in float64 with the original's indexing: alpha_prev =
    alpha_bar[t - c], or alpha_bar[0] for the first grid entry."""
    a_t = alphas[t]
    a_prev = alphas[t - prev_offset] if t - prev_offset >= 0 else alphas[0]
    x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
    return a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).sqrt() * eps + sigma * noise


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_step_on_original_grid_matches_reference(eta):
    sched = DDIMScheduler(**SCHEDULER_CONFIG)
    alphas = alphas_cumprod_float64(SCHEDULER_CONFIG)
    # docs/conventions.md, Sampling: the last step goes to alpha_bar[0] = 0.99915, not 1
    assert abs(alphas[0].item() - 0.99915) < 1e-12
    assert (alphas.float() - sched.alphas_cumprod).abs().max() < 1e-6
    g = torch.Generator().manual_seed(0)
    timesteps = set_timesteps(sched, 10, "original")
    x = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)
    for t in timesteps.tolist():
        eps = torch.randn(x.shape, generator=g, dtype=torch.float64)
        noise = torch.randn(x.shape, generator=g, dtype=torch.float64)
        ref = _reference_ddim_step(eps, t, x, alphas, 100, eta, noise)
        kw = {"variance_noise": noise.float()} if eta > 0 else {}
        ours = sched.step(eps.float(), t, x.float(), eta=eta, **kw).prev_sample
        assert torch.allclose(ours.double(), ref, atol=2e-5, rtol=1e-5), t
        x = ref
