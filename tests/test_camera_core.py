"""The camera core: the one T builder, batched poses, intrinsics and camera rays (docs/conventions.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zero123.camera import (
    RelativeCamera,
    camera_rays,
    elevation_deg_from_world_to_cam,
    focal_length_px,
    intrinsics_from_fov,
    relative_pose_embedding,
    spherical_from_world_to_cams,
    world_to_cam_from_spherical,
    world_to_cams_from_spherical,
)


def _random_poses(rng, n):
    polar = rng.uniform(0.2, math.pi - 0.2, n)
    azimuth = rng.uniform(-math.pi, math.pi, n)
    radius = rng.uniform(1.5, 2.2, n)
    return world_to_cams_from_spherical(torch.from_numpy(polar), torch.from_numpy(azimuth), torch.from_numpy(radius)), (polar, azimuth, radius)


@pytest.mark.parametrize("kind", ["relative_radius", "cond_polar"])
def test_batched_embedding_equals_relative_camera(kind):
    rng = np.random.default_rng(0)
    cond, (pc, _, _) = _random_poses(rng, 16)
    target, _ = _random_poses(rng, 16)
    batched = relative_pose_embedding(cond, target, kind)
    assert batched.shape == (16, 4) and batched.dtype == torch.float32
    for i in range(16):
        cam = RelativeCamera.from_world_to_cam(cond[i].numpy(), target[i].numpy())
        elev = 90.0 - math.degrees(pc[i])
        one = cam.embedding(kind, cond_elevation=elev if kind == "cond_polar" else None)
        torch.testing.assert_close(batched[i], one, atol=1e-6, rtol=0)


def test_spherical_round_trip_and_elevation():
    rng = np.random.default_rng(1)
    poses, (polar, azimuth, radius) = _random_poses(rng, 8)
    p, a, r = spherical_from_world_to_cams(poses)
    np.testing.assert_allclose(p.numpy(), polar, atol=1e-12)
    np.testing.assert_allclose(a.numpy(), azimuth, atol=1e-12)
    np.testing.assert_allclose(r.numpy(), radius, atol=1e-12)
    for i in range(8):
        one = [float(v) for v in spherical_from_world_to_cams(poses[i].numpy())]  # a single (3, 4) matrix
        assert one == pytest.approx([polar[i], azimuth[i], radius[i]], abs=1e-12)
        assert elevation_deg_from_world_to_cam(poses[i]) == pytest.approx(90 - math.degrees(polar[i]), abs=1e-9)


def test_intrinsics_match_the_focal_length():
    k = intrinsics_from_fov(49.13, 64, 48)
    assert k[0, 0] == k[1, 1] == pytest.approx(focal_length_px(49.13, 64))
    assert (k[0, 2], k[1, 2]) == (32.0, 24.0)
    # 35 mm lens on a 32 mm sensor: f = 35/32 of the half-width... times 2
    assert focal_length_px(49.13, 256) == pytest.approx(256 * 35 / 32, rel=2e-4)
    with pytest.raises(ValueError, match="fov_deg"):
        focal_length_px(180.0, 64)
    with pytest.raises(ValueError, match="size"):
        focal_length_px(40.0, 0)


def test_rays_pass_through_the_points_they_image():
    """A world point projected with K and [R | t] (Blender axes -> OpenCV pixels) lies on the ray of its pixel."""
    rng = np.random.default_rng(2)
    poses, _ = _random_poses(rng, 3)
    h, w, fov = 24, 32, 49.13
    k = intrinsics_from_fov(fov, w, h)
    origins, dirs = camera_rays(poses, fov, h, w, dtype=torch.float64)
    assert origins.shape == dirs.shape == (3, h, w, 3)
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(3, h, w, dtype=torch.float64))
    for b in range(3):
        m = poses[b].numpy()
        for _ in range(5):
            i, j = int(rng.integers(h)), int(rng.integers(w))
            depth = rng.uniform(0.5, 3.0)
            # back-project pixel centre (j + .5, i + .5) in OpenCV axes, then flip y and z to Blender axes
            x_cv = np.linalg.inv(k) @ np.array([j + 0.5, i + 0.5, 1.0]) * depth
            x_cam = x_cv * np.array([1.0, -1.0, -1.0])
            point = m[:, :3].T @ (x_cam - m[:, 3])
            o, d = origins[b, i, j].numpy(), dirs[b, i, j].numpy()
            along = (point - o) @ d
            np.testing.assert_allclose(o + along * d, point, atol=1e-9)
            assert along > 0  # in front of the camera


def test_centre_ray_hits_the_origin_and_image_right_is_camera_right():
    m = world_to_cam_from_spherical(math.pi / 2, 0.0, 2.0)  # on +X looking along -X; image right = +Y
    o, d = camera_rays(m, 40.0, 2, 2, dtype=torch.float64)
    centre = d[0].mean(dim=(0, 1))
    centre = centre / centre.norm()
    torch.testing.assert_close(centre, torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-12, rtol=0)
    assert d[0, 0, 1, 1] > d[0, 0, 0, 1]  # right column points further to +Y
    assert d[0, 0, 0, 2] > d[0, 1, 0, 2]  # top row points further up (+Z)
