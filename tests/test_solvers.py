"""Solvers through the pipeline (DDIM on the original grid, DPM-Solver++, Euler ancestral, UniPC),
the quality presets and the CLI's --quality / --solver."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from zero123.cli.__main__ import app
from zero123.nvs import QUALITY_PRESETS, SamplingSettings, generate_views, sampling_preset
from zero123.pipeline import Zero123Pipeline
from zero123.schedule import SOLVERS, make_scheduler

CAMS = [{"azimuth": 30.0}, {"azimuth": -60.0, "elevation": 20.0}]
STEPS = 4


def _gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def _sample(pipe, image, solver, seeds=(1, 2), cams=CAMS, **kw):
    return pipe(image, camera_params=cams[: len(seeds)], num_inference_steps=STEPS, solver=solver,
                generator=_gens(*seeds), output_type="np", **kw).images


@pytest.mark.parametrize("solver", [s for s in SOLVERS if s != "ddim"])
def test_each_solver_samples_with_its_own_scheduler_and_leaves_the_pipeline_s(tiny_pipeline, tiny_image, solver):
    seen = []
    out = _sample(tiny_pipeline, tiny_image, solver,
                  callback_on_step_end=lambda p, i, t, d: seen.append((i, p.num_timesteps)) or {})
    assert out.shape == (2, 64, 64, 3) and np.isfinite(out).all()
    assert seen == [(i, STEPS) for i in range(STEPS)]  # S steps (the DDIM grid would run S - 1)
    assert type(tiny_pipeline.scheduler).__name__ == "DDIMScheduler"  # used for this call only
    # deterministic for fixed generators, and each view independent of the others in the call
    again = _sample(tiny_pipeline, tiny_image, solver)
    np.testing.assert_array_equal(out, again)
    alone = _sample(tiny_pipeline, tiny_image, solver, seeds=(2,), cams=CAMS[1:])
    np.testing.assert_allclose(alone[0], out[1], atol=1e-5)
    ddim = _sample(tiny_pipeline, tiny_image, "ddim")
    assert np.abs(out - ddim).max() > 1e-3


def test_euler_ancestral_draws_step_noise_per_sample(tiny_pipeline, tiny_image):
    """Stochastic solver: changing one view's generator changes that view only."""
    a = _sample(tiny_pipeline, tiny_image, "euler-a", seeds=(1, 2))
    b = _sample(tiny_pipeline, tiny_image, "euler-a", seeds=(1, 3))
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    assert np.abs(a[1] - b[1]).max() > 1e-3


def test_ddim_default_path_is_unchanged(tiny_pipeline, tiny_image):
    """The default call, solver="ddim" and timestep_spacing="original" are the same sampler, bit for
    bit, and generate_views' default settings are the "original" preset."""
    kw = dict(camera_params=CAMS, num_inference_steps=STEPS, output_type="np")
    ref = tiny_pipeline(tiny_image, generator=_gens(1, 2), **kw).images
    for extra in ({"solver": "ddim"}, {"solver": "ddim", "timestep_spacing": "original"}):
        np.testing.assert_array_equal(tiny_pipeline(tiny_image, generator=_gens(1, 2), **extra, **kw).images, ref)
    assert tiny_pipeline.scheduler.timesteps.tolist() == [501, 251, 1]  # the original grid: S - 1 steps
    assert QUALITY_PRESETS["original"] == SamplingSettings() == SamplingSettings(steps=50, guidance=3.0, eta=1.0, solver="ddim")
    views = [generate_views(tiny_pipeline, tiny_image, CAMS, settings=s, preprocessing=_as_is(), seed=3).views
             for s in (SamplingSettings(steps=STEPS), sampling_preset("original", steps=STEPS))]
    for a, b in zip(*views):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def _as_is():
    from zero123.nvs import Preprocessing

    return Preprocessing(segment="none")


@pytest.mark.parametrize("solver", SOLVERS)
def test_v_prediction_model_samples_like_its_epsilon_twin(tiny_components, tiny_image, solver):
    """Each solver's scheduler is built from the pipeline's config, so a v-prediction model (the
    bundled one) is sampled in its own parametrisation: the eps U-Net re-parametrised as v gives the
    same images."""
    from diffusers import DDIMScheduler

    eps_pipe = Zero123Pipeline(**tiny_components)
    v_sched = DDIMScheduler.from_config(tiny_components["scheduler"].config, prediction_type="v_prediction")
    v_pipe = Zero123Pipeline(**{**tiny_components, "scheduler": v_sched})
    assert make_scheduler(solver, v_sched.config).config.prediction_type == "v_prediction"
    a = v_sched.alphas_cumprod
    eps_unet = v_pipe._unet_batched

    def v_unet(sample, t, context, max_batch):
        t_int = t.round().long()  # Euler passes float timesteps
        a_t = a[t_int].view(-1, 1, 1, 1)
        return (eps_unet(sample, t, context, max_batch) - (1 - a_t).sqrt() * sample[:, :4]) / a_t.sqrt()

    v_pipe._unet_batched = v_unet
    for p in (eps_pipe, v_pipe):
        p.set_progress_bar_config(disable=True)
    ref, got = (_sample(p, tiny_image, solver) for p in (eps_pipe, v_pipe))
    np.testing.assert_allclose(got, ref, atol=3e-3)


def test_presets_and_bad_values():
    fast = QUALITY_PRESETS["fast"]
    assert fast.solver != "ddim" and fast.steps < 50 and fast.guidance == 3.0
    assert sampling_preset("fast") == fast
    assert sampling_preset("fast", steps=None, solver="unipc").solver == "unipc"
    assert sampling_preset("original", steps=20).steps == 20
    with pytest.raises(ValueError, match=r"solver must be one of ddim, dpm\+\+, euler-a, unipc; got 'heun'"):
        SamplingSettings(solver="heun")
    with pytest.raises(ValueError, match="quality must be one of original, fast"):
        sampling_preset("best")
    with pytest.raises(ValueError, match="steps must be an integer from 2 to 500 for solver 'ddim'"):
        SamplingSettings(steps=501)
    assert SamplingSettings(steps=600, solver="dpm++").steps == 600
    with pytest.raises(TypeError, match="unknown settings"):
        sampling_preset("fast", step=3)


def test_pipeline_rejects_bad_solver_and_grid_mismatch(tiny_pipeline, tiny_image):
    with pytest.raises(ValueError, match="solver must be one of"):
        tiny_pipeline(tiny_image, camera_params=CAMS[:1], num_inference_steps=2, solver="DPM")
    with pytest.raises(ValueError, match="timestep_spacing='original' is the DDIM grid"):
        tiny_pipeline(tiny_image, camera_params=CAMS[:1], num_inference_steps=2, solver="unipc", timestep_spacing="original")


def test_cli_quality_and_solver(tiny_model_dir, tiny_image, tmp_path):
    runner = CliRunner()
    path = tmp_path / "in.png"
    tiny_image.save(path)
    base = ["nvs", str(path), "--model", str(tiny_model_dir), "--device", "cpu", "--no-preprocess", "--json"]

    def report(*extra):
        res = runner.invoke(app, [*base, "-o", str(tmp_path / f"o{len(list(tmp_path.iterdir()))}"), *extra])
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout[res.stdout.index("{"):])

    # --steps and --solver override the preset; the preset fills what is not given
    r = report("--quality", "fast", "--steps", "3")
    assert (r["quality"], r["solver"], r["steps"]) == ("fast", QUALITY_PRESETS["fast"].solver, 3)
    r = report("--quality", "original", "--steps", "3")
    assert (r["solver"], r["steps"]) == ("ddim", 3)
    r = report("--solver", "euler-a", "--steps", "2")
    assert (r["solver"], r["steps"]) == ("euler-a", 2)
    for extra, match in ((["--solver", "heun"], "--solver must be one of"), (["--quality", "best"], "--quality must be one of")):
        res = runner.invoke(app, [*base, "-o", str(tmp_path / "bad"), *extra])
        assert res.exit_code == 2 and res.stderr.startswith("error: ") and match in res.stderr, res.output
        assert not (tmp_path / "bad").exists()


def test_every_sampling_command_has_the_quality_options():
    import typer.main

    group = typer.main.get_command(app)
    for path in (["nvs"], ["batch"], ["reconstruct"], ["eval", "nvs"]):
        cmd = group
        for name in path:
            cmd = cmd.commands[name]
        opts = {o for p in cmd.params for o in p.opts}
        assert {"--quality", "--solver", "--steps"} <= opts, path
