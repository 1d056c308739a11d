"""Metrics and protocol definitions of the evaluation harness (docs/conventions.md, Evaluation protocols)."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest

from zero123.eval import metrics as M
from zero123.eval.protocols import PROTOCOLS, EvalProtocol, TargetChange, get_protocol, parse_targets
from zero123.camera import RelativeCamera


# ------------------------------------------------------------------------------------ PSNR
def test_psnr_constant_images_known_mse():
    """PSNR = 10 log10(1 / MSE) at data range 1.0: a 0.1 offset is MSE 0.01 -> 20 dB."""
    a = np.full((8, 8, 3), 0.5)
    assert M.psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-9)
    assert M.psnr(a + 0.25, a - 0.25) == pytest.approx(10 * math.log10(1 / 0.25), abs=1e-9)  # 6.0206 dB


def test_psnr_half_pixels_differ():
    """Hand computation: half the pixels off by 1.0 -> MSE 0.5 -> 3.0103 dB."""
    a = np.zeros((4, 4, 3))
    b = a.copy()
    b[:2] = 1.0
    assert M.psnr(b, a) == pytest.approx(10 * math.log10(2), abs=1e-9)


def test_psnr_identical_is_inf_and_uint8_matches_float():
    a = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert M.psnr(a, a) == math.inf
    b = np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8)
    assert M.psnr(a, b) == pytest.approx(M.psnr(a / 255.0, b / 255.0))


# ------------------------------------------------------------------------------------ SSIM
def test_ssim_constant_images_hand_computed():
    """Constant images x, y: SSIM = (2xy + C1)/(x^2 + y^2 + C1) (variances are 0, so the
    structure term is 1), C1 = (0.01 * 1.0)^2."""
    x, y = 0.3, 0.6
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * x * y + c1) / (x * x + y * y + c1)
    got = M.ssim(np.full((16, 16, 3), x), np.full((16, 16, 3), y))
    assert got == pytest.approx(expected, abs=1e-9)


def test_ssim_matches_skimage_and_orders_noise():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(1)
    gt = rng.random((32, 32, 3))
    small = np.clip(gt + rng.normal(0, 0.02, gt.shape), 0, 1)
    large = np.clip(gt + rng.normal(0, 0.2, gt.shape), 0, 1)
    assert M.ssim(gt, gt) == pytest.approx(1.0)
    assert M.ssim(small, gt) == pytest.approx(structural_similarity(gt, small, data_range=1.0, channel_axis=-1))
    assert 1.0 > M.ssim(small, gt) > M.ssim(large, gt)


@pytest.mark.parametrize(
    "a, b, match",
    [
        (np.zeros((8, 8, 3)), np.zeros((8, 9, 3)), "same shape"),
        (np.zeros((8, 8)), np.zeros((8, 8)), r"\(H, W, 3\)"),
        (np.full((8, 8, 3), 2.0), np.zeros((8, 8, 3)), r"\[0, 1\]"),
        (np.full((8, 8, 3), np.nan), np.zeros((8, 8, 3)), "NaN"),
    ],
)
def test_metrics_reject_bad_inputs(a, b, match):
    with pytest.raises(ValueError, match=match):
        M.psnr(a, b)


def test_ssim_rejects_images_smaller_than_window():
    with pytest.raises(ValueError, match="7x7"):
        M.ssim(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))


# ------------------------------------------------------------------------------------ LPIPS
def test_lpips_skips_with_note_when_package_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)  # import lpips -> ImportError
    monkeypatch.setattr(M.importlib.util, "find_spec", lambda name: None)
    fn, note = M.load_lpips("alex")
    assert fn is None and "skipped" in note and "alex" in note and "lpips" in note


def test_lpips_skips_when_backbone_weights_absent(monkeypatch, tmp_path):
    import torch

    monkeypatch.setitem(sys.modules, "lpips", types.ModuleType("lpips"))
    monkeypatch.setattr(M.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    fn, note = M.load_lpips("vgg")
    assert fn is None and M.LPIPS_BACKBONE_FILES["vgg"] in note and "no download" in note


def test_lpips_runs_through_the_package_when_present(monkeypatch, tmp_path):
    """With a (fake) lpips package and the backbone file present, values come from lpips.LPIPS
    called on images mapped to [-1, 1]."""
    import torch

    calls = {}

    class FakeLPIPS(torch.nn.Module):
        def __init__(self, net, verbose=True):
            super().__init__()
            calls["net"] = net

        def forward(self, a, b):
            calls["range"] = (float(a.min()), float(a.max()))
            return (a - b).abs().mean().reshape(1, 1, 1, 1)

    fake = types.ModuleType("lpips")
    fake.LPIPS = FakeLPIPS
    monkeypatch.setitem(sys.modules, "lpips", fake)
    monkeypatch.setattr(M.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / M.LPIPS_BACKBONE_FILES["squeeze"]).write_bytes(b"x")
    fn, note = M.load_lpips("squeeze")
    assert fn is not None and "squeeze" in note and calls["net"] == "squeeze"
    a, b = np.zeros((8, 8, 3)), np.ones((8, 8, 3))
    assert fn(a, b) == pytest.approx(2.0)  # |-1 - 1|
    assert calls["range"] == (-1.0, -1.0)


def test_lpips_unknown_backbone():
    with pytest.raises(ValueError, match="backbone"):
        M.load_lpips("resnet")


# ------------------------------------------------------------------------------------ protocols
def test_presets_match_spec_section_10():
    sd = get_protocol("syncdreamer-gso30")
    assert (sd.input_view, sd.targets, sd.resolution, sd.background, sd.lpips_backbone, sd.num_objects) == (
        0, tuple(range(16)), 256, "white", "vgg", 30)
    rt = get_protocol("zero123-rtmv")
    assert (rt.input_view, rt.targets, rt.num_objects, rt.resolution) == (0, tuple(range(1, 17)), 20, 256)
    assert PROTOCOLS["views-release"].targets == "others" and PROTOCOLS["views-release"].split == "val"


def test_unknown_protocol_names_choices():
    with pytest.raises(ValueError, match="syncdreamer-gso30"):
        get_protocol("gso")


def test_protocol_replace_marks_modified_and_validates():
    p = get_protocol("syncdreamer-gso30").replace(resolution=128)
    assert p.name == "syncdreamer-gso30 (modified)" and p.resolution == 128
    assert get_protocol("zero123-rtmv").replace(resolution=256).name == "zero123-rtmv"
    with pytest.raises(ValueError, match="split"):
        EvalProtocol(split="test")
    with pytest.raises(ValueError, match="lpips_backbone"):
        EvalProtocol(lpips_backbone="resnet")
    with pytest.raises(ValueError, match="resolution"):
        EvalProtocol(resolution=0)


def test_parse_targets():
    assert parse_targets("others") == "others"
    assert parse_targets("1-3, 5,2") == (1, 2, 3, 5)
    changes = parse_targets("az:90,az:180,az:270,el:30,el:-30")
    assert changes == (TargetChange(90), TargetChange(180), TargetChange(270), TargetChange(0, 30), TargetChange(0, -30))
    assert parse_targets("az:45+el:-15") == (TargetChange(45, -15),)
    for bad in ("", "left", "az:90,3", "az:x", "el:120", "5-2", "az:1+az:2"):
        with pytest.raises(ValueError, match="targets"):
            parse_targets(bad)


def test_target_change_matches_relative_camera_signs():
    """docs/conventions.md, Cameras: +elevation = camera moves up = negative d_polar; azimuth wraps (270 == -90)."""
    up = RelativeCamera(d_polar=math.radians(-30), d_azimuth=0.0)
    assert TargetChange(0, 30).distance_deg(up) == pytest.approx(0.0, abs=1e-9)
    assert TargetChange(0, -30).distance_deg(up) == pytest.approx(60.0)
    left = RelativeCamera(d_polar=0.0, d_azimuth=math.radians(-90))
    assert TargetChange(270).distance_deg(left) == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------------------------ predictor
@pytest.mark.parametrize("embedding, expect_elev", [("relative_radius", False), ("cond_polar", True)])
def test_pipeline_predictor_call_contract(embedding, expect_elev):
    """The pipeline gets cameras=[...], output_type='np', a seeded CPU generator, and cond_elevation
    only for Stable-Zero123-style models (docs/conventions.md, Cameras, camera_embedding == 'cond_polar')."""
    import torch
    from PIL import Image

    from zero123.eval import PipelinePredictor

    seen = {}

    class FakePipe:
        cc_projection = types.SimpleNamespace(config=types.SimpleNamespace(camera_embedding=embedding))

        def __call__(self, image, **kw):
            seen.update(kw)
            seen["draw"] = torch.rand(1, generator=kw["generator"]).item()
            return types.SimpleNamespace(images=np.full((len(kw["cameras"]), 16, 16, 3), 0.25, np.float32))

    cams = [RelativeCamera(0.1, 0.2), RelativeCamera(-0.3, 1.0)]
    pred = PipelinePredictor(FakePipe(), num_inference_steps=7, guidance_scale=2.0)
    out = pred(Image.new("RGB", (16, 16)), cams, cond_elevation=25.0, seed=3)
    assert len(out) == 2 and out[0].shape == (16, 16, 3) and out[0].max() == pytest.approx(0.25)
    assert seen["cameras"] == cams and seen["output_type"] == "np" and seen["num_inference_steps"] == 7
    assert seen["guidance_scale"] == 2.0 and seen["draw"] == torch.rand(1, generator=torch.Generator().manual_seed(3)).item()
    assert ("cond_elevation" in seen) == expect_elev and seen.get("cond_elevation", 25.0) == 25.0


# ------------------------------------------------------------------------------------ mask IoU
def test_foreground_mask_cut_is_largest_channel_distance_from_white():
    """Foreground = not near-white: max_c(1 - x_c) > 0.1 (docs/conventions.md, Evaluation protocols)."""
    im = np.ones((1, 5, 3))
    im[0, 1] = [0.91, 1.0, 1.0]  # 0.09 from white: background
    im[0, 2] = [1.0, 1.0, 0.89]  # 0.11 in one channel: foreground
    im[0, 3] = [0.0, 0.0, 0.0]
    im[0, 4] = [0.92, 0.92, 0.92]  # light grey, every channel within 0.1: background
    assert M.foreground_mask(im).tolist() == [[False, False, True, True, False]]
    assert M.foreground_mask(im, threshold=0.05).tolist() == [[False, True, True, True, True]]
    with pytest.raises(ValueError, match="threshold"):
        M.foreground_mask(im, threshold=0.0)


def test_mask_iou_hand_computed_cases():
    white = np.ones((8, 8, 3))
    a, b = white.copy(), white.copy()
    a[:4] = 0.2  # top half: 32 pixels
    b[:, :2] = 0.7  # left quarter: 16 pixels, 8 shared with a
    assert M.mask_iou(a, b) == pytest.approx(8 / 40)
    assert M.mask_iou(b, a) == pytest.approx(8 / 40)  # symmetric
    recoloured = np.where(a < 1.0, 0.6, 1.0)
    assert M.mask_iou(a, recoloured) == 1.0  # colour does not matter, only the silhouette
    assert M.mask_iou(white, white) == 1.0  # both empty
    assert M.mask_iou(white, a) == 0.0
    c = white.copy()
    c[4:] = 0.0
    assert M.mask_iou(a, c) == 0.0  # disjoint
    u8 = (a * 255).astype(np.uint8)
    assert M.mask_iou(u8, b) == pytest.approx(8 / 40)
    with pytest.raises(ValueError, match="same shape"):
        M.mask_iou(a, np.ones((8, 9, 3)))
