"""The 3D core: fields, the volume renderer (against the mesh renderer and its own slow twin), fitting losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zero123.camera import world_to_cam_from_spherical
from zero123.render import RenderMesh, create_renderer
from zero123.threed.field import DenseGrid, FieldSettings, HashGrid, make_field
from zero123.threed.fit import PosedViews, distortion, fit_field, FitSettings, growth_schedule
from zero123.threed.volume import OccupancyGrid, composite_weights, ray_box_intersection, render_rays, render_views

CENTER = (0.0, 0.25, 0.1)
RADIUS = 0.15


#: Subtracted from the raw density of sphere_grid: a ball light can pass through.
FAINT_SHIFT = 10.0


def sphere_grid(center=CENTER, radius=RADIUS, resolution=48) -> DenseGrid:
    """A dense grid holding an opaque red ball (raw density +8 inside, -15 outside: empty to 1e-5, a
    ramp of one voxel)."""
    field = DenseGrid(FieldSettings(resolution=resolution, initial_resolution=resolution))
    c = torch.linspace(-field.bound, field.bound, resolution)
    z, y, x = torch.meshgrid(c, c, c, indexing="ij")  # grid node [z, y, x]
    d = ((x - center[0]) ** 2 + (y - center[1]) ** 2 + (z - center[2]) ** 2).sqrt() - radius
    with torch.no_grad():
        field.raw_density.copy_((-8 * d / field.voxel_size).clamp(-15, 8)[None, None])
        field.raw_rgb[0].fill_(4.0)  # red
        field.raw_rgb[1].fill_(-4.0)
        field.raw_rgb[2].fill_(-4.0)
    return field


def test_ray_box_intersection_hits_and_misses():
    o = torch.tensor([[2.0, 0.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    d = torch.tensor([[-1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    near, far, hit = ray_box_intersection(o, d, 0.5)
    assert hit.tolist() == [True, False, True]
    assert near[0] == pytest.approx(1.5) and far[0] == pytest.approx(2.5)
    assert near[2] == 0.0 and far[2] == pytest.approx(0.5)  # a ray starting inside starts at its origin


def test_composite_weights_is_emission_absorption():
    """Two samples of alpha 0.5 each: weights 0.5 and 0.25 (transmittance halves)."""
    tau = math.log(2.0)
    w = composite_weights(torch.tensor([[tau, tau]]), torch.ones(1, 2))
    assert w[0].tolist() == pytest.approx([0.5, 0.25])


def test_volume_render_matches_the_mesh_renderer_convention():
    """A ball at +Y (and a little up) seen from +X: the volume render's silhouette is the mesh
    renderer's silhouette of the same ball (same cameras through zero123.camera), on the image's right."""
    import trimesh

    size = 48
    w2c = np.stack([world_to_cam_from_spherical(math.pi / 2, 0.0, 1.8), world_to_cam_from_spherical(1.0, 2.0, 1.6)])
    vol = render_views(sphere_grid(), w2c, 49.13, size, num_samples=96)
    ball = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS).apply_translation(CENTER)
    mesh_alpha = create_renderer("torch", image_size=size).render(RenderMesh.from_arrays(ball.vertices, ball.faces), w2c)[..., 3]
    for i in range(2):
        a, b = vol.opacity[i].numpy() > 0.5, mesh_alpha[i] > 127
        assert (a & b).sum() / (a | b).sum() > 0.9
    cols = np.nonzero(vol.opacity[0].numpy() > 0.5)[1]
    assert cols.min() > size / 2  # +Y is image right from +X
    # red where the ball is, the white background elsewhere
    assert vol.rgb[0][vol.opacity[0] > 0.99][:, 0].min() > 0.9 and vol.rgb[0][vol.opacity[0] > 0.99][:, 1].max() < 0.1
    assert torch.allclose(vol.rgb[0][vol.opacity[0] < 1e-3], torch.ones(3), atol=1e-3)
    # depth: the ball's near side, about distance - |centre| projected... at least between the box faces
    hit = vol.opacity[0] > 0.99
    assert vol.depth[0][hit].min() > 1.8 - 0.6 and vol.depth[0][hit].max() < 1.8 + 0.6


def test_skipping_matches_the_full_evaluation():
    """Empty-space skipping and early termination change nothing visible, and evaluate fewer samples."""
    field = sphere_grid()
    occupancy = OccupancyGrid(field.bound, 32)
    occupancy.update(field, step_size=field.voxel_size / 2)
    assert 0.0 < occupancy.fraction < 0.2
    w2c = world_to_cam_from_spherical(1.2, 0.7, 1.8)[None]
    fast = render_views(field, w2c, 49.13, 32, num_samples=96, occupancy=occupancy, return_normals=True)
    slow = render_views(field, w2c, 49.13, 32, num_samples=96, min_transmittance=0.0, min_weight=0.0, return_normals=True)
    assert fast.evaluated < 0.3 * slow.evaluated
    assert torch.allclose(fast.rgb, slow.rgb, atol=2e-3) and torch.allclose(fast.opacity, slow.opacity, atol=2e-3)
    assert torch.allclose(fast.normals, slow.normals, atol=5e-3)


def test_normals_point_outward():
    field = sphere_grid()
    dirs = torch.nn.functional.normalize(torch.randn(64, 3), dim=-1)
    pts = torch.tensor(CENTER) + RADIUS * dirs
    cos = (field.normals(pts) * dirs).sum(-1)
    assert cos.min() > 0.9


def test_orientation_penalty_is_zero_for_a_solid_seen_from_outside():
    """Ref-NeRF's orientation penalty: an opaque ball seen from outside shows only normals facing the
    camera (penalty ~0); a faint ball lets the rays through to its back, whose normals face away
    (penalised); hand-checked on two samples."""
    from zero123.threed.volume import orientation_penalty

    w = torch.tensor([[0.5, 0.25]])
    n = torch.tensor([[[0.0, 0.0, -1.0], [0.0, 0.6, 0.8]]])  # facing the camera, then 0.8 away
    assert float(orientation_penalty(w, n, torch.tensor([[0.0, 0.0, 1.0]]))) == pytest.approx(0.25 * 0.64)
    field = sphere_grid()
    origins = torch.tensor([[0.0, 0.0, 3.0]]).repeat(16, 1) + torch.randn(16, 3, generator=torch.Generator().manual_seed(0)) * 0.05
    dirs = torch.nn.functional.normalize(torch.tensor(CENTER) - origins, dim=-1)
    kw = dict(num_samples=128, return_normals=True, min_transmittance=0, min_weight=0)
    solid = render_rays(field, origins, dirs, **kw)
    with torch.no_grad():
        field.raw_density.sub_(FAINT_SHIFT)
    faint = render_rays(field, origins, dirs, **kw)
    print(f"orientation penalty: opaque {solid.orientation.mean():.4f} (opacity {solid.opacity.mean():.2f}), "
          f"faint {faint.orientation.mean():.4f} (opacity {faint.opacity.mean():.2f})")
    assert solid.opacity.min() > 0.9 and solid.orientation.max() < 0.02
    assert faint.opacity.max() < 0.9 and faint.orientation.mean() > 5 * solid.orientation.mean() + 0.02


def test_dense_grid_grows_keeping_its_function():
    field = sphere_grid(resolution=17)
    pts = (torch.rand(500, 3) * 2 - 1) * field.bound
    before = field(pts)
    assert field.grow(33) and field.resolution == 33 and not field.grow(20)
    after = field(pts)
    assert torch.allclose(before.rgb, after.rgb, atol=1e-5)  # (R - 1) doubled: nested cells, same trilinear function
    assert torch.allclose(before.density, after.density, rtol=1e-4, atol=1e-3)


def test_growth_schedule_is_geometric():
    sched = growth_schedule(FieldSettings(resolution=64, initial_resolution=16), FitSettings(steps=100, grow_at=(0.2, 0.4)))
    assert sched == {20: 32, 40: 64}
    assert growth_schedule(FieldSettings(kind="hash"), FitSettings()) == {}


def test_distortion_matches_the_double_sum():
    g = torch.Generator().manual_seed(0)
    w = torch.rand(5, 12, generator=g) / 12
    t = torch.sort(torch.rand(5, 12, generator=g) * 2, 1).values
    delta = torch.rand(5, generator=g) * 0.1
    brute = ((w[:, :, None] * w[:, None, :] * (t[:, :, None] - t[:, None, :]).abs()).sum((1, 2)) + (w ** 2).sum(1) * delta / 3).mean()
    assert float(distortion(w, t, delta)) == pytest.approx(float(brute), rel=1e-5)


def test_hash_grid_is_differentiable_and_fits_a_silhouette():
    """The pure-torch hash grid learns a ball's silhouettes from 8 views in a short fit."""
    settings = FieldSettings(kind="hash", hash_levels=4, hash_table_log2=12, hash_base_resolution=8, resolution=32, hidden=16)
    field = make_field(settings)
    assert isinstance(field, HashGrid)
    out = render_rays(field, torch.tensor([[2.0, 0, 0]]), torch.tensor([[-1.0, 0, 0]]), num_samples=16)
    out.opacity.sum().backward()
    assert field.tables.grad.abs().sum() > 0
    w2c = np.stack([world_to_cam_from_spherical(1.0 + 0.3 * (i % 2), i * math.pi / 4, 1.8) for i in range(8)])
    gt = render_views(sphere_grid(), w2c, 49.13, 24, num_samples=64)
    views = PosedViews(gt.rgb.clamp(0, 1), gt.opacity.clamp(0, 1), w2c)
    fit = fit_field(views, settings, FitSettings(steps=40, batch_rays=384, num_samples=24, lr=0.03, lr_final=0.02,
                                                 occupancy_resolution=24, occupancy_warmup=20, distortion_weight=0.0))
    pred = render_views(fit.field, w2c, 49.13, 24, num_samples=64)
    a, b = pred.opacity > 0.5, gt.opacity > 0.5
    assert float((a & b).sum() / (a | b).sum()) > 0.7


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="field kind"):
        FieldSettings(kind="voxels")
    with pytest.raises(ValueError, match="initial_resolution"):
        FieldSettings(resolution=32, initial_resolution=64)
    with pytest.raises(ValueError, match="fit steps"):
        FitSettings(steps=0)
    with pytest.raises(ValueError, match="grow_at"):
        FitSettings(grow_at=(0.5, 0.2))
    with pytest.raises(ValueError, match="no object pixels"):
        PosedViews(torch.ones(1, 8, 8, 3), torch.zeros(1, 8, 8), np.stack([world_to_cam_from_spherical(1.0, 0.0, 2.0)]))
    with pytest.raises(ValueError, match="alpha must be"):
        PosedViews(torch.ones(2, 8, 8, 3), torch.ones(1, 8, 8), np.stack([world_to_cam_from_spherical(1.0, 0.0, 2.0)] * 2))


def test_project_points_inverts_camera_rays():
    from zero123.camera import camera_rays, project_points

    m = world_to_cam_from_spherical(1.1, 0.4, 2.0)
    o, d = camera_rays(m, 49.13, 16, 20, dtype=torch.float64)
    px, depth = project_points((o[0] + 1.7 * d[0]).reshape(-1, 3), m, 49.13, 16, 20)
    jj, ii = np.meshgrid(np.arange(20) + 0.5, np.arange(16) + 0.5)
    assert np.abs(px.numpy().reshape(16, 20, 2) - np.stack([jj, ii], -1)).max() < 1e-9
    assert (depth > 0).all()


def test_visual_hull_of_exact_silhouettes_holds_the_ball():
    from zero123.threed.fit import visual_hull

    w2c = np.stack([world_to_cam_from_spherical(1.0 + 0.5 * (i % 2), i * math.pi / 3, 1.8) for i in range(6)])
    gt = render_views(sphere_grid(), w2c, 49.13, 32, num_samples=64)
    hull = visual_hull(PosedViews(gt.rgb.clamp(0, 1), gt.opacity.clamp(0, 1), w2c), 0.6, 33, share=1.0)
    c = torch.linspace(-0.6, 0.6, 33)
    x, y, z = torch.meshgrid(c, c, c, indexing="ij")
    d = ((x - CENTER[0]) ** 2 + (y - CENTER[1]) ** 2 + (z - CENTER[2]) ** 2).sqrt()
    assert hull[d < RADIUS - 0.02].all()  # the visual hull contains the object
    assert not hull[d > 2.5 * RADIUS].any()  # and carves the space around it


def test_a_missing_optional_package_names_the_extra(monkeypatch):
    import sys

    from zero123.threed._deps import MissingDependencyError, require

    monkeypatch.setitem(sys.modules, "xatlas", None)  # import xatlas now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"xatlas is needed for UV unwrapping.*pip install 'zero123\[3d\]'"):
        require("xatlas")
