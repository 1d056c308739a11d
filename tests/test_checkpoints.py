"""Checkpoint formats (docs/conventions.md, Checkpoint formats): every format, written from ONE set of tiny random weights,
loads to the same numbers; the full-size original key set is consumed exactly; bad input is named.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch

from checkpoint_fixtures import (
    TINY_OVERRIDES,
    flat_ema,
    original_state_dict,
    write_layout,
    write_lightning_ckpt,
)
from zero123 import Zero123Pipeline
from zero123.checkpoints import detect_format, load_components

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def weights():
    from zero123.models.factory import build_components

    return build_components("tiny", seed=0)


@pytest.fixture(scope="module")
def formats(weights, tmp_path_factory):
    """path per format: original .ckpt (EMA + raw), original .safetensors, layout A (.bin), layout B, ours."""
    from safetensors.torch import save_file

    from zero123.pipeline import Zero123Pipeline

    root = tmp_path_factory.mktemp("formats")
    sd = original_state_dict(weights)
    paths = {
        "ldm_ckpt": write_lightning_ckpt(root / "105000.ckpt", sd),
        "layout_a": write_layout(root / "kxic", weights, "A", bin_weights=True),
        "layout_b": write_layout(root / "benny", weights, "B"),
    }
    save_file({k: v.contiguous() for k, v in sd.items()}, str(root / "orig.safetensors"))
    paths["ldm_safetensors"] = root / "orig.safetensors"
    Zero123Pipeline(**weights).save_pretrained(root / "ours")
    paths["ours"] = root / "ours"
    return paths


def _load(path):
    kw = {"config_overrides": TINY_OVERRIDES} if path.is_file() else {}
    pipe = Zero123Pipeline.from_pretrained(path, **kw)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _noise(pipe, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    cond = pipe.encode_image(images)
    x = torch.randn(2, 4, 8, 8, generator=g)
    poses = torch.tensor([[0.3, 0.5, 0.8, 0.1], [-0.4, -0.2, 0.9, -0.3]])
    return pipe.predict_noise(x, torch.tensor([981, 501]), cond, poses, guidance_scale=3.0)


@pytest.fixture(scope="module")
def reference(weights):
    from zero123.pipeline import Zero123Pipeline

    pipe = Zero123Pipeline(**weights)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("fmt", ["ldm_ckpt", "ldm_safetensors", "layout_a", "layout_b", "ours"])
def test_every_format_gives_identical_noise_and_images(fmt, formats, reference, tiny_image):
    """docs/conventions.md, Checkpoint formats: same weights in every layout -> eps within 1e-6 (fp32) and the same image."""
    from zero123.camera import RelativeCamera

    pipe = _load(formats[fmt])
    with torch.no_grad():
        diff = (_noise(pipe) - _noise(reference)).abs().max().item()
    assert diff < 1e-6, f"{fmt}: max |eps diff| = {diff}"
    cam = RelativeCamera(d_polar=0.3, d_azimuth=0.8)  # radians
    kw = dict(cameras=cam, num_inference_steps=3, output_type="np")
    a = pipe(tiny_image, generator=torch.Generator().manual_seed(7), **kw).images
    b = reference(tiny_image, generator=torch.Generator().manual_seed(7), **kw).images
    assert abs(a - b).max() < 1e-5


@pytest.mark.parametrize("fmt,expected", [("ldm_ckpt", "ldm"), ("ldm_safetensors", "ldm"), ("layout_a", "diffusers_a"),
                                          ("layout_b", "diffusers_b"), ("ours", "zero123")])
def test_detect_format(fmt, expected, formats):
    """Layout B's model_index also names ``Zero123Pipeline``: told apart by clip_camera_projection."""
    assert detect_format(formats[fmt]) == expected


@pytest.mark.parametrize("fmt", ["ldm_ckpt", "layout_a", "layout_b", "ours"])
def test_from_pretrained_routes_every_format(fmt, formats, reference):
    from zero123.pipeline import Zero123Pipeline

    kw = {"config_overrides": TINY_OVERRIDES} if formats[fmt].is_file() else {}
    pipe = Zero123Pipeline.from_pretrained(formats[fmt], **kw)
    with torch.no_grad():
        assert (_noise(pipe) - _noise(reference)).abs().max() < 1e-6, fmt


def test_ema_is_default_and_use_ema_false_takes_raw_weights(formats, weights):
    """docs/conventions.md, Checkpoint formats: EMA under flattened names is what the demo samples with; the raw copy
    (the fixture adds 0.5) is used only with use_ema=False."""
    ref = weights["unet"].state_dict()["conv_in.weight"]
    ema = load_components(formats["ldm_ckpt"], config_overrides=TINY_OVERRIDES)
    raw = load_components(formats["ldm_ckpt"], use_ema=False, config_overrides=TINY_OVERRIDES)
    assert ema.has_ema and ema.used_ema and not raw.used_ema
    assert torch.equal(ema.components["unet"].state_dict()["conv_in.weight"], ref)
    assert torch.allclose(raw.components["unet"].state_dict()["conv_in.weight"], ref + 0.5)
    assert "model.diffusion_model.input_blocks.0.0.weight" in ema.ignored_keys
    assert flat_ema("model.diffusion_model.input_blocks.0.0.weight") == "model_ema.diffusion_modelinput_blocks00weight"


def test_half_precision_and_vae_scale_from_checkpoint(formats):
    loaded = load_components(formats["ldm_ckpt"], torch_dtype=torch.float16, config_overrides=TINY_OVERRIDES)
    for name in ("unet", "vae", "image_encoder", "cc_projection"):
        assert loaded.components[name].dtype == torch.float16
    assert loaded.components["vae"].config.scaling_factor == 0.18215


def test_camera_embedding_from_argument_name_and_metadata(weights, tmp_path):
    """docs/conventions.md, Cameras: nothing in the weights tells Stable Zero123 apart; name/metadata/caller does."""
    from safetensors.torch import save_file

    sd = {k: v.contiguous() for k, v in original_state_dict(weights, ema=False).items()}
    p = write_lightning_ckpt(tmp_path / "stable_zero123.ckpt", sd)
    assert load_components(p, config_overrides=TINY_OVERRIDES).camera_embedding == "cond_polar"
    q = write_lightning_ckpt(tmp_path / "mine.ckpt", sd)
    got = load_components(q, config_overrides=TINY_OVERRIDES)
    assert got.camera_embedding == "relative_radius" and got.has_ema is False
    forced = load_components(q, camera_embedding="cond_polar", config_overrides=TINY_OVERRIDES)
    assert forced.components["cc_projection"].config.camera_embedding == "cond_polar"
    save_file(sd, str(tmp_path / "meta.safetensors"), metadata={"camera_embedding": "cond_polar"})
    assert load_components(tmp_path / "meta.safetensors", config_overrides=TINY_OVERRIDES).camera_embedding == "cond_polar"


@pytest.mark.slow
def test_full_size_original_key_set_is_consumed_exactly():
    """docs/conventions.md, Network and Checkpoint formats: the complete key set and shapes of a real original checkpoint
    (on the meta device: no memory) convert with no key left over and every shape matching."""
    from accelerate import init_empty_weights  # noqa: F401  (meta construction below)

    from zero123.checkpoints import convert_ldm_state_dict
    from zero123.checkpoints.build import assign_state_dict
    from zero123.checkpoints.statedict import StateDict
    from zero123.models.factory import PRESETS, build_components

    with torch.device("meta"):
        full = build_components("full", seed=None)
    sd = original_state_dict(full)
    # real SD-v1 counts: 686 U-Net tensors, 248 VAE tensors; ViT-L/14 has 24 blocks
    assert sum(k.startswith("model.diffusion_model.") for k in sd) == 686
    assert sum(k.startswith("first_stage_model.") for k in sd) == 248
    shapes = {
        "model.diffusion_model.input_blocks.0.0.weight": (320, 8, 3, 3),
        "model.diffusion_model.output_blocks.2.1.conv.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight": (1280, 768),
        "first_stage_model.encoder.mid.attn_1.q.weight": (512, 512, 1, 1),
        "cond_stage_model.model.visual.transformer.resblocks.23.attn.in_proj_weight": (3072, 1024),
        "cond_stage_model.model.visual.positional_embedding": (257, 1024),
        "cond_stage_model.model.visual.proj": (1024, 768),
        "cc_projection.weight": (768, 772),
    }
    for k, shape in shapes.items():
        assert tuple(sd[k].shape) == shape, k
    sdict = StateDict(sd)
    conv = convert_ldm_state_dict(sdict)  # raises on any leftover key
    assert set(sdict.keys()) - sdict.accessed - set(conv.ignored) == set()
    for name in ("unet", "vae"):
        cfg = getattr(conv, name).config
        for k, v in PRESETS["full"][name].items():
            assert tuple(cfg[k]) == tuple(v) if isinstance(v, tuple) else cfg[k] == v, (name, k)
        assign_state_dict(full[name], getattr(conv, name).state_dict, name)  # names + shapes
    assign_state_dict(full["image_encoder"], conv.image_encoder.state_dict, "image_encoder")
    assert conv.image_encoder.config["num_attention_heads"] == 16 and conv.image_encoder.config["image_size"] == 224
    assert conv.cc_projection.config == dict(embed_dim=768, pose_dim=4, cross_attention_dim=768)


# ---------------------------------------------------------------------------------------------- bad input


def test_truncated_and_corrupt_files(formats, tmp_path):
    data = formats["ldm_ckpt"].read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_components(tmp_path / "cut.ckpt")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ValueError, match="safetensors"):
        load_components(tmp_path / "junk.safetensors")


def test_plain_stable_diffusion_checkpoint_is_rejected(weights, tmp_path):
    sd = original_state_dict(weights, ema=False)
    sd["model.diffusion_model.input_blocks.0.0.weight"] = sd["model.diffusion_model.input_blocks.0.0.weight"][:, :4]
    del sd["cc_projection.weight"], sd["cc_projection.bias"]
    p = write_lightning_ckpt(tmp_path / "sd15.ckpt", sd)
    with pytest.raises(ValueError, match="not a zero123 checkpoint.*4 input channels"):
        load_components(p)


def test_wrong_shape_names_key_and_both_shapes(weights, tmp_path):
    sd = original_state_dict(weights, ema=False)
    sd["model.diffusion_model.out.2.bias"] = torch.zeros(5)
    p = write_lightning_ckpt(tmp_path / "bad.ckpt", sd)
    with pytest.raises(ValueError, match=r"unet: wrong shape for 'conv_out.bias': checkpoint has \[5\], the model expects \[4\]"):
        load_components(p, config_overrides=TINY_OVERRIDES)


def test_unexpected_and_missing_keys_are_named(weights, tmp_path):
    sd = original_state_dict(weights, ema=False)
    sd["first_stage_model.extra.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match="first_stage_model.extra.weight"):
        load_components(write_lightning_ckpt(tmp_path / "extra.ckpt", sd), config_overrides=TINY_OVERRIDES)
    sd = original_state_dict(weights, ema=False)
    del sd["model.diffusion_model.out.0.weight"]
    with pytest.raises(ValueError, match="conv_norm_out.weight"):
        load_components(write_lightning_ckpt(tmp_path / "missing.ckpt", sd), config_overrides=TINY_OVERRIDES)
    sd = original_state_dict(weights, ema=True)
    del sd[flat_ema("model.diffusion_model.out.2.bias")]
    with pytest.raises(ValueError, match="diffusion_modelout2bias.*use_ema=False"):
        load_components(write_lightning_ckpt(tmp_path / "ema.ckpt", sd), config_overrides=TINY_OVERRIDES)


def test_folder_missing_a_component(weights, tmp_path):
    import shutil

    folder = write_layout(tmp_path / "a", weights, "A")
    shutil.rmtree(folder / "vae")
    with pytest.raises(FileNotFoundError, match="missing component 'vae'"):
        load_components(folder)


def test_unknown_format_and_unreadable_path(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown file format"):
        load_components(tmp_path / "model.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="unknown format"):
        load_components(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_components(tmp_path / "nope.ckpt")
    with pytest.raises(FileNotFoundError, match="not a local path"):
        load_components("no-such-model-name")
    torch.save({"state_dict": {"foo.weight": torch.zeros(2)}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="unknown checkpoint format"):
        load_components(tmp_path / "other.ckpt")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_permission_denied(formats, tmp_path):
    import os
    import shutil

    if os.getuid() == 0:
        pytest.skip("root reads any file")
    p = shutil.copy(formats["ldm_ckpt"], tmp_path / "locked.ckpt")
    os.chmod(p, 0)
    with pytest.raises(PermissionError, match="not readable"):
        load_components(p)


def test_lightning_pickle_needs_trust_pickle(weights, tmp_path):
    """docs/conventions.md, Checkpoint formats: Lightning pickles callbacks, so weights_only=True fails (torch >= 2.6);
    with trust_pickle the file loads even though the callback's module is not importable."""
    mod = types.ModuleType("fake_lightning_callbacks")

    class ModelCheckpoint:
        def __init__(self):
            self.monitor = "val/loss"

    ModelCheckpoint.__module__, ModelCheckpoint.__qualname__ = mod.__name__, "ModelCheckpoint"
    mod.ModelCheckpoint = ModelCheckpoint
    sys.modules[mod.__name__] = mod
    try:
        p = write_lightning_ckpt(tmp_path / "lightning.ckpt", original_state_dict(weights),
                                 pickled_extra={"ModelCheckpoint": ModelCheckpoint()})
    finally:
        del sys.modules[mod.__name__]
    with pytest.raises(ValueError, match="trust_pickle=True"):
        load_components(p, config_overrides=TINY_OVERRIDES)
    loaded = load_components(p, trust_pickle=True, config_overrides=TINY_OVERRIDES)
    assert torch.equal(loaded.components["cc_projection"].proj.weight, weights["cc_projection"].proj.weight)


def test_unknown_keyword_is_a_type_error(formats):
    with pytest.raises(TypeError, match="unexpected keyword"):
        Zero123Pipeline.from_pretrained(formats["ldm_ckpt"], use_emma=True)
