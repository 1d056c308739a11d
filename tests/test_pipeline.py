"""Zero123Pipeline on tiny random models: numerics of docs/conventions.md, Conditioning and Sampling, batching, I/O, save/load."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from zero123 import RelativeCamera
from zero123.pipeline import CLIP_MEAN, CLIP_STD, ImageConditioning, Zero123Pipeline, Zero123PipelineOutput

STEPS = 3  # original grid with S = 3: c = 333, grid 1, 334, 667, (1000 dropped): 3 steps


def _gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


# ---------------------------------------------------------------- determinism and batching
def test_fixed_seed_is_deterministic(tiny_pipeline, tiny_image):
    kw = dict(camera_params={"azimuth": 30.0}, num_inference_steps=STEPS, output_type="np")
    a = tiny_pipeline(tiny_image, generator=torch.Generator().manual_seed(7), **kw).images
    b = tiny_pipeline(tiny_image, generator=torch.Generator().manual_seed(7), **kw).images
    c = tiny_pipeline(tiny_image, generator=torch.Generator().manual_seed(8), **kw).images
    assert a.shape == (1, 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


@pytest.mark.parametrize("max_batch", [None, 3])
def test_n_views_in_one_call_equal_n_single_calls(tiny_pipeline, tiny_image, max_batch):
    views = [{"azimuth": 0.0}, {"azimuth": 90.0, "elevation": 20.0}, {"azimuth": -45.0, "radius": 1.2}]
    batched = tiny_pipeline(
        tiny_image, views, num_inference_steps=STEPS, generator=_gens(1, 2, 3), output_type="pt", max_batch=max_batch
    ).images
    assert batched.shape == (3, 3, 64, 64)
    for i, (view, seed) in enumerate(zip(views, (1, 2, 3))):
        single = tiny_pipeline(
            tiny_image, view, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(seed), output_type="pt"
        ).images
        torch.testing.assert_close(batched[i : i + 1], single, atol=1e-5, rtol=0)


def test_num_images_per_prompt_is_view_major(tiny_pipeline, tiny_image):
    views = [{"azimuth": 0.0}, {"azimuth": 90.0}]
    out = tiny_pipeline(
        tiny_image, views, num_images_per_prompt=2, num_inference_steps=STEPS, generator=_gens(1, 2, 3, 4), output_type="latent"
    ).images
    assert out.shape == (4, 4, 8, 8)
    second_view_first_sample = tiny_pipeline(
        tiny_image, views[1], num_inference_steps=STEPS, generator=_gens(3), output_type="latent"
    ).images
    # latents (|x| ~ 1): a batch of 4 vs 1 changes BLAS blocking, so allow fp32 rounding relative to |x| too
    torch.testing.assert_close(out[2:3], second_view_first_sample, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- a recording U-Net
class _Recorder:
    """Records every U-Net, image-encoder and VAE-encoder call via forward pre-hooks."""

    def __init__(self, pipe):
        self.unet_calls, self.clip_calls, self.vae_calls = [], [], []
        self.handles = [
            pipe.unet.register_forward_pre_hook(self._unet, with_kwargs=True),
            pipe.image_encoder.register_forward_pre_hook(lambda m, a, k: self.clip_calls.append(1), with_kwargs=True),
            pipe.vae.encoder.register_forward_pre_hook(lambda m, a: self.vae_calls.append(1)),
        ]

    def _unet(self, module, args, kwargs):
        sample, t = args[0], args[1]
        self.unet_calls.append(
            dict(sample=sample.clone(), t=torch.as_tensor(t).clone(), context=kwargs["encoder_hidden_states"].clone())
        )

    def close(self):
        for h in self.handles:
            h.remove()


def test_recording_unet_channel_order_unscaled_concat_and_zero_uncond(tiny_pipeline, tiny_image):
    """docs/conventions.md, Network and Conditioning: channels [noisy (0-3), concat (4-7)]; concat = VAE mode NOT scaled by 0.18215;
    uncond = zero token after cc_projection AND zero concat latent; image encoded once."""
    pipe = tiny_pipeline
    views = [{"azimuth": 30.0}, {"azimuth": 120.0, "elevation": -10.0}]
    init = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    rec = _Recorder(pipe)
    try:
        pipe(tiny_image, views, num_inference_steps=10, latents=init, generator=_gens(0, 1), output_type="latent")
    finally:
        rec.close()

    # encoded once per call, not per step or view
    assert len(rec.clip_calls) == 1 and len(rec.vae_calls) == 1
    # one U-Net call per step (9 steps for S = 10), both branches and both views batched
    assert len(rec.unet_calls) == 9
    assert [int(c["t"][0]) for c in rec.unet_calls] == [801, 701, 601, 501, 401, 301, 201, 101, 1]

    image = pipe.image_to_tensor(tiny_image)
    mode = pipe.vae.encode(image).latent_dist.mode()
    embeds = pipe.image_encoder(pixel_values=pipe.clip_preprocess(image)).image_embeds
    poses = torch.stack([RelativeCamera.from_params(v).embedding() for v in views])
    tokens = pipe.cc_projection(embeds.expand(2, -1), poses)

    first = rec.unet_calls[0]
    sample, context = first["sample"], first["context"]
    assert sample.shape == (4, 8, 8, 8) and context.shape == (4, 1, 32)
    uncond, cond = sample[:2], sample[2:]
    # channels 0-3: the noisy latent (at step 0 the given initial noise), identical in both branches
    torch.testing.assert_close(cond[:, :4], init)
    torch.testing.assert_close(uncond[:, :4], init)
    # channels 4-7: the unscaled posterior mode; the scaled one would be 0.18215x smaller
    torch.testing.assert_close(cond[:, 4:], mode.expand(2, -1, -1, -1), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(cond[:, 4:], mode.expand(2, -1, -1, -1) * 0.18215, atol=1e-3)
    assert mode.abs().max() > 1e-2  # the check above is meaningful
    # uncond: all-zero concat latent and all-zero context token
    assert torch.count_nonzero(uncond[:, 4:]) == 0
    assert torch.count_nonzero(context[:2]) == 0
    torch.testing.assert_close(context[2:], tokens, atol=1e-5, rtol=1e-5)
    assert tokens.abs().max() > 1e-3  # zero after the projection, not a zero CLIP embedding projected
    assert pipe.cc_projection.proj.bias.abs().max() > 0


def test_max_batch_chunks_unet_calls(tiny_pipeline, tiny_image):
    rec = _Recorder(tiny_pipeline)
    try:
        tiny_pipeline(tiny_image, [{"azimuth": a} for a in (0.0, 90.0, 180.0)], num_inference_steps=STEPS, max_batch=4, output_type="latent")
    finally:
        rec.close()
    # 3 views x 2 branches = 6 samples per step -> chunks of 4 and 2; 3 steps
    assert [c["sample"].shape[0] for c in rec.unet_calls] == [4, 2] * 3


def test_guidance_one_is_conditional_branch_alone(tiny_pipeline, tiny_image):
    pipe = tiny_pipeline
    rec = _Recorder(pipe)
    try:
        pipe(tiny_image, {"azimuth": 30.0}, num_inference_steps=STEPS, guidance_scale=1.0, output_type="latent")
    finally:
        rec.close()
    assert [c["sample"].shape[0] for c in rec.unet_calls] == [1, 1, 1]  # no uncond branch
    assert torch.count_nonzero(rec.unet_calls[0]["context"]) > 0

    cond = pipe.encode_image(pipe.image_to_tensor(tiny_image))
    pose = RelativeCamera.from_degrees(azimuth=30.0).embedding()[None]
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor(501)
    eps = pipe.predict_noise(x, t, cond, pose, guidance_scale=1.0)
    token = pipe.cc_projection(cond.image_embeds, pose)
    direct = pipe.unet(torch.cat([x, cond.concat_latents], 1), t, encoder_hidden_states=token).sample
    torch.testing.assert_close(eps, direct)
    # and CFG: eps = u + s (c - u)
    uncond = pipe.unet(torch.cat([x, torch.zeros_like(x)], 1), t, encoder_hidden_states=torch.zeros_like(token)).sample
    torch.testing.assert_close(
        pipe.predict_noise(x, t, cond, pose, guidance_scale=3.0), uncond + 3.0 * (direct - uncond), atol=1e-5, rtol=1e-5
    )


# ---------------------------------------------------------------- CLIP preprocessing
def _cubic(x, a=-0.75):
    x = np.abs(x)
    return np.where(x <= 1, (a + 2) * x**3 - (a + 3) * x**2 + 1, np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0))


def _bicubic_matrix(n_in, n_out):
    """1-D bicubic resampling matrix, align_corners=True (output i sits at i*(n_in-1)/(n_out-1)),
    Keys kernel a = -0.75, border samples replicated, no antialiasing."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = i * (n_in - 1) / (n_out - 1)
        base = math.floor(src)
        for k in range(base - 1, base + 3):
            m[i, min(max(k, 0), n_in - 1)] += _cubic(src - k)
    return m


@pytest.mark.parametrize("size_in,size_out", [(64, 32), (256, 224)])
def test_clip_preprocess_matches_first_principles(size_in, size_out):
    """docs/conventions.md, Conditioning: bicubic, align_corners=True, no antialias, no centre crop, [0,1], OpenAI mean/std."""
    fake = SimpleNamespace(image_encoder=SimpleNamespace(config=SimpleNamespace(image_size=size_out)))
    x = torch.rand(2, 3, size_in, size_in, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ours = Zero123Pipeline.clip_preprocess(fake, x.double())
    m = _bicubic_matrix(size_in, size_out)
    resized = m @ x.double().numpy() @ m.T
    ref = ((resized + 1) / 2 - np.array(CLIP_MEAN)[None, :, None, None]) / np.array(CLIP_STD)[None, :, None, None]
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-9)
    # in float32, PyTorch computes source coordinates in float32 too: close, not exact
    np.testing.assert_allclose(Zero123Pipeline.clip_preprocess(fake, x).double().numpy(), ref, atol=1e-3)
    ours = ours.float()
    # the conventions we must NOT use differ visibly
    wrong = F.interpolate(x, size=(size_out, size_out), mode="bicubic", align_corners=False, antialias=True)
    wrong = ((wrong + 1) / 2 - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    assert (wrong - ours).abs().max() > 0.05


def test_clip_preprocess_uses_encoder_size(tiny_pipeline):
    out = tiny_pipeline.clip_preprocess(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 3, 32, 32)
    # mid-grey (0 in [-1, 1]) maps to (0.5 - mean) / std
    torch.testing.assert_close(out[0, :, 0, 0], (0.5 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD))


def test_encode_image_shapes_and_mode(tiny_pipeline, tiny_image):
    img = tiny_pipeline.image_to_tensor(tiny_image)
    cond = tiny_pipeline.encode_image(img)
    assert isinstance(cond, ImageConditioning)
    assert cond.image_embeds.shape == (1, 32) and cond.concat_latents.shape == (1, 4, 8, 8)
    torch.testing.assert_close(cond.concat_latents, tiny_pipeline.vae.encode(img).latent_dist.mean)


# ---------------------------------------------------------------- inputs
def test_input_kinds_give_same_result(tiny_pipeline, tiny_image):
    """PIL RGBA, numpy uint8 RGBA and a torch tensor in [0, 1] are the same image."""
    kw = dict(camera_params={"azimuth": 10.0}, num_inference_steps=STEPS, output_type="np")
    arr = np.array(tiny_image)
    a = tiny_pipeline(tiny_image, generator=torch.Generator().manual_seed(0), **kw).images
    b = tiny_pipeline(arr, generator=torch.Generator().manual_seed(0), **kw).images
    c = tiny_pipeline(torch.from_numpy(arr).permute(2, 0, 1).float() / 255, generator=torch.Generator().manual_seed(0), **kw).images
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, c, atol=1e-6)


def test_rgba_composited_on_white(tiny_pipeline):
    clear = Image.new("RGBA", (80, 40), (0, 0, 0, 0))
    t = tiny_pipeline.image_to_tensor(clear)
    assert t.shape == (1, 3, 64, 64)
    torch.testing.assert_close(t, torch.ones_like(t))


def test_output_types(tiny_pipeline, tiny_image):
    kw = dict(camera_params={"azimuth": 10.0}, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0))
    pil = tiny_pipeline(tiny_image, **kw).images
    assert isinstance(pil, list) and pil[0].size == (64, 64) and pil[0].mode == "RGB"
    kw["generator"] = torch.Generator().manual_seed(0)
    pt = tiny_pipeline(tiny_image, output_type="pt", **kw).images
    assert pt.shape == (1, 3, 64, 64) and 0 <= pt.min() and pt.max() <= 1
    np.testing.assert_allclose(np.asarray(pil[0]) / 255.0, pt[0].permute(1, 2, 0).numpy(), atol=1 / 255 + 1e-6)
    tup = tiny_pipeline(tiny_image, output_type="latent", return_dict=False, **kw)
    assert isinstance(tup, tuple) and tup[0].shape == (1, 4, 8, 8)


def test_callback_on_step_end(tiny_pipeline, tiny_image):
    seen = []

    def cb(pipe, i, t, kwargs):
        seen.append((i, int(t)))
        return {"latents": kwargs["latents"] * 0}

    out = tiny_pipeline(tiny_image, {"azimuth": 0.0}, num_inference_steps=STEPS, output_type="latent", callback_on_step_end=cb)
    assert seen == [(0, 667), (1, 334), (2, 1)]
    assert torch.count_nonzero(out.images) == 0


def test_cameras_argument_and_cond_polar(tiny_components, tiny_image):
    from zero123.models.cc_projection import CCProjection

    cc = tiny_components["cc_projection"]
    polar_cc = CCProjection(embed_dim=32, pose_dim=4, cross_attention_dim=32, camera_embedding="cond_polar")
    polar_cc.load_state_dict(cc.state_dict())
    pipe = Zero123Pipeline(**{**tiny_components, "cc_projection": polar_cc})
    pipe.set_progress_bar_config(disable=True)
    cam = RelativeCamera.from_degrees(azimuth=30.0)
    with pytest.raises(ValueError, match="cond_elevation"):
        pipe(tiny_image, cameras=[cam], num_inference_steps=STEPS)
    rec = _Recorder(pipe)
    try:
        pipe(tiny_image, cameras=cam, cond_elevation=30.0, num_inference_steps=STEPS, guidance_scale=1.0, output_type="latent")
    finally:
        rec.close()
    cond = pipe.encode_image(pipe.image_to_tensor(tiny_image))
    pose = torch.tensor([[0.0, math.sin(math.radians(30)), math.cos(math.radians(30)), math.radians(60.0)]])
    torch.testing.assert_close(rec.unet_calls[0]["context"], pipe.cc_projection(cond.image_embeds, pose))


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(camera_params="azimuth=30"), TypeError, "camera_params"),
        (dict(camera_params=[]), ValueError, "empty"),
        (dict(camera_params={"azimuth": float("nan")}), ValueError, "finite"),
        (dict(camera_params={"azimut": 3.0}), ValueError, "unknown key"),
        (dict(), ValueError, "exactly one"),
        (dict(camera_params={"azimuth": 1.0}, cameras=[RelativeCamera(0.0, 0.0)]), ValueError, "exactly one"),
        (dict(cameras=[{"azimuth": 1.0}]), TypeError, "RelativeCamera"),
        (dict(camera_params={"azimuth": 1.0}, generator=[torch.Generator()] * 2), ValueError, "one per output"),
        (dict(camera_params={"azimuth": 1.0}, output_type="jpg"), ValueError, "output_type"),
        (dict(camera_params={"azimuth": 1.0}, num_inference_steps=0), ValueError, "num_inference_steps"),
        (dict(camera_params={"azimuth": 1.0}, guidance_scale=float("inf")), ValueError, "guidance_scale"),
        (dict(camera_params={"azimuth": 1.0}, max_batch=0), ValueError, "max_batch"),
        (dict(camera_params={"azimuth": 1.0}, latents=torch.zeros(2, 4, 8, 8)), ValueError, "latents"),
        (dict(camera_params={"azimuth": 1.0}, timestep_spacing="linear"), ValueError, "timestep_spacing"),
    ],
)
def test_bad_arguments_raise_clear_errors(tiny_pipeline, tiny_image, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        tiny_pipeline(tiny_image, **kwargs)


@pytest.mark.parametrize("bad", [123, np.zeros((4, 4, 2), np.uint8), torch.zeros(2, 8, 8), np.zeros((4, 4, 3), np.int64),
                                 np.full((16, 16, 3), 1.5, np.float32), "missing.png"])
def test_bad_images_rejected(tiny_pipeline, bad):
    """Through zero123.image_io: out-of-range floats are an error (as everywhere), a missing path is
    FileNotFoundError, each message names input_image."""
    with pytest.raises((TypeError, ValueError, FileNotFoundError), match="input_image"):
        tiny_pipeline(bad, {"azimuth": 0.0}, num_inference_steps=STEPS)


# ---------------------------------------------------------------- dtype, save/load, offload
def test_fp16_on_cpu_is_a_clear_error(tiny_pipeline, tiny_image):
    tiny_pipeline.to(torch.float16)
    with pytest.raises(ValueError, match="float16 is not supported on CPU"):
        tiny_pipeline(tiny_image, {"azimuth": 0.0}, num_inference_steps=STEPS)


def test_save_and_load_round_trip(tiny_pipeline, tiny_image, tmp_path):
    tiny_pipeline.save_pretrained(tmp_path / "m")
    index = json.loads((tmp_path / "m" / "model_index.json").read_text())
    assert index["_class_name"] == "Zero123Pipeline"
    assert index["cc_projection"][1] == "CCProjection"
    assert list((tmp_path / "m" / "unet").glob("*.safetensors"))
    assert not list((tmp_path / "m").rglob("*.bin"))
    loaded = Zero123Pipeline.from_pretrained(tmp_path / "m")
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.cc_projection).__name__ == "CCProjection"
    assert loaded.camera_embedding == "relative_radius"
    kw = dict(camera_params={"azimuth": 45.0}, num_inference_steps=STEPS, output_type="np")
    a = tiny_pipeline(tiny_image, generator=torch.Generator().manual_seed(0), **kw).images
    b = loaded(tiny_image, generator=torch.Generator().manual_seed(0), **kw).images
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_half_stored_folder_loads_as_float32_everywhere(tiny_pipeline, tmp_path):
    """A folder stored in float16 (as the bundled model is) loads in ONE dtype, float32 by default:
    transformers >= 5 alone would keep the image encoder in its stored float16 (unusable on CPU)."""
    tiny_pipeline.to(torch.float16).save_pretrained(tmp_path / "half")
    loaded = Zero123Pipeline.from_pretrained(tmp_path / "half")
    dtypes = {name: getattr(loaded, name).dtype for name in ("unet", "vae", "image_encoder", "cc_projection")}
    assert set(dtypes.values()) == {torch.float32}, dtypes


def test_dtype_and_torch_dtype_are_synonyms(tiny_model_dir):
    a = Zero123Pipeline.from_pretrained(tiny_model_dir, torch_dtype=torch.bfloat16)
    b = Zero123Pipeline.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    assert a.unet.dtype == b.unet.dtype == torch.bfloat16
    assert a.cc_projection.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="disagree"):
        Zero123Pipeline.from_pretrained(tiny_model_dir, torch_dtype=torch.float32, dtype=torch.bfloat16)


def test_bf16_runs_on_cpu(tiny_model_dir, tiny_image):
    pipe = Zero123Pipeline.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(tiny_image, {"azimuth": 30.0}, num_inference_steps=STEPS, output_type="np").images
    assert out.dtype == np.float32 and np.isfinite(out).all()


def test_missing_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        Zero123Pipeline.from_pretrained(tmp_path / "nope")


def test_model_cpu_offload_callable(tiny_pipeline, tiny_image):
    try:
        tiny_pipeline.enable_model_cpu_offload(device="cpu")
    except (RuntimeError, ImportError) as e:  # pragma: no cover - depends on accelerate
        pytest.skip(f"accelerate refuses model offload on this machine: {e}")
    out = tiny_pipeline(tiny_image, {"azimuth": 30.0}, num_inference_steps=STEPS, output_type="np").images
    assert out.shape == (1, 64, 64, 3)


def test_readme_seed_style_example(tiny_model_dir, tiny_image):
    """The README's example: camera_params as one dict, .images[0] is a PIL image."""
    pipe = Zero123Pipeline.from_pretrained(tiny_model_dir)
    pipe.set_progress_bar_config(disable=True)
    img = tiny_image
    result = pipe(
        input_image=img,
        camera_params={"azimuth": 45.0, "elevation": 0.0, "radius": 1.0},
        num_inference_steps=4,
        guidance_scale=3.0,
    )
    assert isinstance(result, Zero123PipelineOutput)
    view = result.images[0]
    assert isinstance(view, Image.Image) and view.size == (64, 64)


def test_top_level_export():
    import zero123

    assert zero123.Zero123Pipeline is Zero123Pipeline
    assert zero123.CCProjection.__name__ == "CCProjection"


# ---------------------------------------------------------------- v-prediction models
def test_v_prediction_model_samples_like_the_same_model_in_epsilon_form(tiny_components, tiny_image):
    """A v-prediction U-Net that is the eps U-Net re-parametrised, ``v = (eps - sqrt(1-a) x_t) /
    sqrt(a)``, must give the same guided eps from ``predict_noise`` (the SDS seam) and the same
    images from DDIM (eta 1, CFG): the pipeline hands ``scheduler.step`` the model's own output."""
    from diffusers import DDIMScheduler

    eps_pipe = Zero123Pipeline(**tiny_components)
    v_sched = DDIMScheduler.from_config(tiny_components["scheduler"].config, prediction_type="v_prediction")
    v_pipe = Zero123Pipeline(**{**tiny_components, "scheduler": v_sched})
    assert (eps_pipe.prediction_type, v_pipe.prediction_type) == ("epsilon", "v_prediction")
    a = v_sched.alphas_cumprod
    eps_unet = v_pipe._unet_batched

    def v_unet(sample, t, context, max_batch):
        a_t = a[t.long()].view(-1, 1, 1, 1)
        return (eps_unet(sample, t, context, max_batch) - (1 - a_t).sqrt() * sample[:, :4]) / a_t.sqrt()

    v_pipe._unet_batched = v_unet
    for p in (eps_pipe, v_pipe):
        p.set_progress_bar_config(disable=True)
    cond = eps_pipe.encode_image(eps_pipe.image_to_tensor(tiny_image))
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    poses = torch.tensor([[0.3, 0.0, 1.0, 0.0], [-0.2, 0.5, 0.8, 0.1]])
    for t in (900, 400):
        torch.testing.assert_close(v_pipe.predict_noise(x, t, cond, poses, 3.0), eps_pipe.predict_noise(x, t, cond, poses, 3.0),
                                   rtol=1e-4, atol=1e-4)
    assert not torch.allclose(v_pipe.predict_model_output(x, 900, cond, poses), eps_pipe.predict_model_output(x, 900, cond, poses))
    kw = dict(camera_params=[{"azimuth": 30.0}, {"elevation": -20.0}], num_inference_steps=STEPS, output_type="np")
    ref = eps_pipe(tiny_image, generator=_gens(1, 2), **kw).images
    got = v_pipe(tiny_image, generator=_gens(1, 2), **kw).images
    np.testing.assert_allclose(got, ref, atol=2e-3)


def test_unsupported_prediction_type_is_a_clear_error(tiny_components, tiny_image):
    from diffusers import DDIMScheduler

    sched = DDIMScheduler.from_config(tiny_components["scheduler"].config, prediction_type="sample")
    pipe = Zero123Pipeline(**{**tiny_components, "scheduler": sched})
    with pytest.raises(ValueError, match="prediction_type"):
        pipe(tiny_image, {"azimuth": 10.0}, num_inference_steps=STEPS)
