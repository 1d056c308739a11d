"""The SDS route on this CPU.

* An oracle denoiser built from ground-truth renders of a known, mirror-asymmetric object (the
  project's renderer at the camera the relative pose T describes) drives the SDS loop to the
  object's shape (volume IoU against the ground-truth mesh), and the same oracle fed the opposite
  azimuth sign (stable-dreamfusion's classic mistake) does clearly worse: the test proves that the
  guidance's camera vectors, the renderer and the fitted field share one convention.
* The route end to end with the bundled model on the example image (mesh covers the input's silhouette).
* Bad settings are clear errors (library and CLI exit code 2).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler
from typer.testing import CliRunner

from zero123.camera import spherical_from_world_to_cams, world_to_cams_from_spherical
from zero123.models.factory import SCHEDULER_CONFIG
from zero123.render import RenderMesh, create_renderer
from zero123.threed.field import FieldSettings
from zero123.threed.fit import PosedViews
from zero123.threed.guidance import GuidanceSettings, Zero123Guidance
from zero123.threed.mesh import MeshSettings, extract_mesh
from zero123.threed.metrics import evaluate_mesh
from zero123.threed.reconstruct import input_camera
from zero123.threed.sds import SDSSettings, fit_sds, get_sds_preset, random_cameras

SIZE = 32
ELEVATION = 20.0


def asymmetric_object() -> RenderMesh:
    """A body with an arm towards +y near the top and a foot towards -x: no mirror symmetry in y."""
    import trimesh

    parts = [trimesh.creation.box((0.5, 0.5, 1.0)),
             trimesh.creation.box((0.3, 0.5, 0.3), transform=trimesh.transformations.translation_matrix((0.0, 0.45, 0.3))),
             trimesh.creation.box((0.35, 0.3, 0.25), transform=trimesh.transformations.translation_matrix((-0.3, 0.0, -0.37)))]
    colors = [(0.9, 0.3, 0.2), (0.2, 0.7, 0.3), (0.2, 0.3, 0.9)]
    v, f, c = [], [], []
    for part, col in zip(parts, colors):
        f.append(np.asarray(part.faces) + sum(len(x) for x in v))
        v.append(np.asarray(part.vertices))
        c.append(np.tile(col, (len(part.vertices), 1)))
    v = np.concatenate(v)
    v = (v - (v.max(0) + v.min(0)) / 2) / (v.max(0) - v.min(0)).max()  # unit bounding box, centred
    return RenderMesh.from_arrays(v, np.concatenate(f), np.concatenate(c))


class OraclePipe:
    """Stands in for a Zero123Pipeline: its "denoiser" returns the exact noise that leads from x_t to
    the ground-truth view (pixels in [-1, 1]) at the camera T describes relative to the input."""

    camera_embedding = "relative_radius"

    def __init__(self, mesh: RenderMesh, renderer, input_w2c: np.ndarray, azimuth_sign: float = 1.0):
        self.mesh, self.renderer, self.sign = mesh, renderer, azimuth_sign
        self.image_size = SIZE
        self.scheduler = DDIMScheduler(**SCHEDULER_CONFIG)
        self.polar, self.azimuth, self.radius = (float(x[0]) for x in spherical_from_world_to_cams(input_w2c[None]))

    def encode_image(self, images):
        return None

    def ground_truth(self, poses: torch.Tensor) -> torch.Tensor:
        d_polar, s, c, d_r = poses.double().unbind(-1)
        cams = world_to_cams_from_spherical(self.polar + d_polar, self.azimuth + self.sign * torch.atan2(s, c), self.radius + d_r)
        rgba = self.renderer.render(self.mesh, cams.numpy()).astype(np.float32) / 255.0
        rgb = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
        return torch.from_numpy(rgb).permute(0, 3, 1, 2) * 2 - 1

    def predict_noise(self, noisy, timestep, conditioning, poses, guidance_scale=3.0, max_batch=None):
        a = self.scheduler.alphas_cumprod[timestep].view(-1, 1, 1, 1)
        return (noisy - a.sqrt() * self.ground_truth(poses)) / (1 - a).sqrt()


class PixelGuidance(Zero123Guidance):
    """The identity "VAE": the latents are the render's pixels in [-1, 1]."""

    def encode_renders(self, images):
        s = self.pipe.image_size
        x = images if images.shape[-1] == s else F.interpolate(images, (s, s), mode="bilinear", align_corners=False)
        return x * 2 - 1


ORACLE_SETTINGS = SDSSettings(
    steps=160, warmup_steps=10, ref_size=SIZE, ref_batch_rays=512, num_samples=40, render_sizes=(SIZE,), render_size_at=(),
    sds_weight=1.0, rgb_weight=1.0, mask_weight=1.0, tv_weight=1e-5, distortion_weight=0.01, entropy_weight=0.0,
    sparsity_weight=0.0, elevation_range=(-30.0, 50.0), guidance=GuidanceSettings(t_start=(0.2, 0.9), t_end=(0.2, 0.9)),
    field=FieldSettings(bound=0.6, resolution=32, initial_resolution=20), occupancy_resolution=24)


@pytest.fixture(scope="module")
def oracle_scene():
    renderer = create_renderer("auto", image_size=SIZE)
    mesh = asymmetric_object()
    w2c = input_camera(ELEVATION)
    reference = PosedViews.from_rgba(renderer.render(mesh, w2c[None]), w2c[None])
    yield mesh, renderer, w2c, reference
    renderer.close()


def oracle_metrics(scene, sign: float):
    mesh, renderer, w2c, reference = scene
    pipe = OraclePipe(mesh, renderer, w2c, sign)
    guidance = PixelGuidance(pipe, torch.zeros(1, 3, SIZE, SIZE), w2c, ORACLE_SETTINGS.guidance)
    fit = fit_sds(reference, guidance, ELEVATION, ORACLE_SETTINGS)
    pred = extract_mesh(fit.field, w2c[None], reference.fov_deg, MeshSettings(resolution=64, max_faces=None, smooth_iterations=0, silhouette_size=SIZE),
                        reference_masks=reference.alpha)
    return evaluate_mesh((pred.vertices, pred.faces), (mesh.vertices, mesh.faces))


def test_oracle_denoiser_recovers_the_shape_and_the_azimuth_sign_matters(oracle_scene):
    t = time.perf_counter()
    right, wrong = oracle_metrics(oracle_scene, +1.0), oracle_metrics(oracle_scene, -1.0)
    print(f"oracle SDS: volume IoU {right.volume_iou:.3f} (Chamfer {right.chamfer:.4f}), azimuth sign flipped "
          f"{wrong.volume_iou:.3f} (Chamfer {wrong.chamfer:.4f}) ({time.perf_counter() - t:.1f} s)")
    assert right.volume_iou >= 0.6
    assert wrong.volume_iou <= right.volume_iou - 0.1
    assert wrong.chamfer >= 1.5 * right.chamfer


def test_oracle_gradient_is_a_pull_towards_the_ground_truth_view(oracle_scene):
    """With the oracle, w(t) (eps_hat - eps) = sqrt(a (1 - a)) (x - x_gt) for any noise draw."""
    mesh, renderer, w2c, _ = oracle_scene
    pipe = OraclePipe(mesh, renderer, w2c)
    g = PixelGuidance(pipe, torch.zeros(1, 3, SIZE, SIZE), w2c)
    cams = random_cameras(2, ELEVATION, SDSSettings(), torch.Generator().manual_seed(0))
    x = torch.rand(2, 3, SIZE, SIZE)
    t = torch.tensor([250, 800])
    out = g(x, cams, timesteps=t, noise=torch.randn(2, 3, SIZE, SIZE))
    a = pipe.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    gt = pipe.ground_truth(g.poses(cams))
    torch.testing.assert_close(out.grad, (a * (1 - a)).sqrt() * (x * 2 - 1 - gt), rtol=1e-3, atol=1e-4)
    # the oracle's camera is the requested one: its ground truth is the renderer's view from there
    direct = renderer.render(mesh, cams.numpy()).astype(np.float32) / 255.0
    direct = direct[..., :3] * direct[..., 3:] + 1 - direct[..., 3:]
    torch.testing.assert_close(gt, torch.from_numpy(direct).permute(0, 3, 1, 2) * 2 - 1, rtol=0, atol=2e-2)


def test_regularisers_run_and_normal_smoothness_measures_roughness(oracle_scene):
    from zero123.threed.sds import normal_smoothness

    flat = torch.zeros(1, 8, 8, 3)
    flat[..., 2] = 1
    full = torch.ones(1, 8, 8)
    assert float(normal_smoothness(flat, full)) == 0.0
    rough = F.normalize(torch.randn(1, 8, 8, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    assert float(normal_smoothness(rough, full)) > 0.5 and float(normal_smoothness(rough, torch.zeros(1, 8, 8))) == 0.0
    # every regulariser on, a few steps of the loop: finite, logged, the render size schedule followed
    mesh, renderer, w2c, reference = oracle_scene
    guidance = PixelGuidance(OraclePipe(mesh, renderer, w2c), torch.zeros(1, 3, SIZE, SIZE), w2c)
    s = dataclasses.replace(ORACLE_SETTINGS, steps=6, warmup_steps=2, normal_smoothness_weight=1.0, orientation_weight=0.1, entropy_weight=0.1,
                            sparsity_weight=0.1, sds_batch=2, render_sizes=(16, 24), render_size_at=(0.5,))
    fit = fit_sds(reference, guidance, ELEVATION, s, log_every=1)
    assert [h.render_size for h in fit.history] == [0, 0, 16, 24, 24, 24]
    assert all(math.isfinite(h.loss) for h in fit.history)


def test_random_cameras_stay_around_the_input_elevation():
    s = SDSSettings(elevation_range=(-10.0, 30.0), elevation_limits=(-30.0, 45.0))
    cams = random_cameras(200, 20.0, s, torch.Generator().manual_seed(0))
    polar, az, r = spherical_from_world_to_cams(cams)
    elev = 90 - torch.rad2deg(polar)
    assert float(elev.min()) >= 10.0 - 1e-6 and float(elev.max()) <= 45.0 + 1e-6
    assert float(torch.rad2deg(az).min()) < -150 and float(torch.rad2deg(az).max()) > 150
    torch.testing.assert_close(r, torch.full_like(r, s.distance))


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="sds steps"):
        SDSSettings(steps=-5)
    with pytest.raises(ValueError, match="warmup_steps"):
        SDSSettings(steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="render_size_at"):
        SDSSettings(render_sizes=(32, 64), render_size_at=())
    with pytest.raises(ValueError, match="sds_weight"):
        SDSSettings(sds_weight=float("nan"))
    with pytest.raises(ValueError, match="guidance"):
        dataclasses.replace(SDSSettings(), guidance=GuidanceSettings(guidance_scale=float("nan")))
    with pytest.raises(ValueError, match="preset must be one of"):
        get_sds_preset("best")
    assert get_sds_preset("fast") == SDSSettings()
    assert get_sds_preset("quality").steps > SDSSettings().steps


@pytest.mark.slow
def test_sds_route_with_the_bundled_model_covers_the_input(tmp_path):
    """The route end to end with the bundled model (given elevation, a short fit): the mesh covers the
    input's silhouette from the input camera; report.json says how it was made."""
    from zero123.assets import EXAMPLE_IMAGE
    from zero123.loading import load_pipeline
    from zero123.threed.export import write_reconstruction
    from zero123.threed.reconstruct import silhouette_iou
    from zero123.threed.sds import reconstruct_sds
    from zero123.threed.texture import TextureSettings

    pipe = load_pipeline("bundled", device="cpu")
    settings = dataclasses.replace(SDSSettings(), steps=120, texture=TextureSettings(size=256))
    stages = set()
    rec = reconstruct_sds(pipe, EXAMPLE_IMAGE, elevation_deg=20.0, settings=settings, seed=1,
                          progress=lambda stage, done, total: stages.add(stage))
    assert stages == {"sds", "mesh", "texture"}
    iou = silhouette_iou(rec.mesh, rec.input_world_to_cam, rec.input_mask)
    print(f"sds route: input silhouette IoU {iou:.3f}, timings {rec.timings}")
    assert iou >= 0.85
    assert all(h.nonfinite == 0 for h in rec.fit.history)
    assert [h.render_size for h in rec.fit.history if h.render_size] == sorted(h.render_size for h in rec.fit.history if h.render_size)
    write_reconstruction(rec, tmp_path, turntable=None)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["route"] == "sds" and report["elevation_deg"] == 20.0 and report["elevation_source"] == "given"
    assert report["input_silhouette_iou"] == pytest.approx(iou) and report["sds"]["steps"] == 120
    assert (tmp_path / "mesh.glb").is_file()


@pytest.mark.slow
def test_sds_refines_the_fast_routes_field():
    """``init="views"``: the fast route's fitted field is the start (same box), SDS refines it."""
    from zero123.assets import EXAMPLE_IMAGE
    from zero123.loading import load_pipeline
    from zero123.nvs import SamplingSettings
    from zero123.threed.fit import FitSettings
    from zero123.threed.reconstruct import ImageRouteSettings, ReconstructSettings
    from zero123.threed.sds import reconstruct_sds

    pipe = load_pipeline("bundled", device="cpu")
    from zero123.threed.texture import TextureSettings

    cheap = ReconstructSettings(fit=FitSettings(steps=60), mesh=MeshSettings(resolution=48), texture=TextureSettings(size=64))
    first = ImageRouteSettings(sampling=SamplingSettings(steps=5), elevations=(0.0,), reconstruct=cheap)
    stages = set()
    rec = reconstruct_sds(pipe, EXAMPLE_IMAGE, elevation_deg=20.0, init="views", init_settings=first, seed=0,
                          settings=dataclasses.replace(SDSSettings(), steps=40, warmup_steps=5, texture=TextureSettings(size=128),
                                                       mesh=MeshSettings(resolution=64)),
                          progress=lambda stage, done, total: stages.add(stage))
    assert {"generate", "fit", "sds", "mesh", "texture"} <= stages
    assert rec.extra["init"] == "views" and "generate" in rec.timings
    assert rec.fit.field.resolution == first.reconstruct.field.resolution  # started from the fast route's grid
    assert rec.extra["input_silhouette_iou"] >= 0.8


def test_reconstruct_command_sds_errors(tmp_path):
    from zero123.assets import EXAMPLE_IMAGE
    from zero123.cli.__main__ import app

    runner = CliRunner()

    def error(*args):
        res = runner.invoke(app, ["reconstruct", str(EXAMPLE_IMAGE), "--route", "sds", "-o", str(tmp_path / "o"), "--no-progress", *args])
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output
        return res.output

    assert "steps" in error("--fit-steps", "-5")
    assert "--guidance" in error("--guidance", "nan")
    assert "preset" in error("--preset", "best")
    assert "--elevation" in error("--elevation", "sideways")
    assert "--init" in error("--init", "magic")
    assert not (tmp_path / "o").exists()
