"""Camera conventions (docs/conventions.md, Cameras). Each convention is pinned with an input that would fool the
wrong one (kornia style): asymmetric angles so a sign flip of d_polar, of d_azimuth or of d_radius,
or using ``t`` instead of ``-R^T t`` as the camera centre, gives a different T."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from zero123.camera import (
    DEFAULT_INPUT_DISTANCE,
    RelativeCamera,
    blender_to_opencv_world_to_cam,
    camera_centers_from_world_to_cams,
    embed_cameras,
    parse_cameras,
    spherical_from_world_to_cams,
    world_to_cam_from_spherical,
    world_to_cam_look_at,
)

D = math.radians


def T(cam: RelativeCamera, kind="relative_radius", cond_elevation=None) -> list[float]:
    return cam.embedding(kind, cond_elevation).tolist()


def assert_T(cam, expected, **kw):
    np.testing.assert_allclose(T(cam, **kw), expected, atol=1e-6)


# ---------------------------------------------------------------------- seed API / from_degrees
def test_seed_api_dict_hand_values():
    """Seed API: +elevation moves the camera UP, so d_polar = -elevation (docs/conventions.md, Cameras: +d_polar = down);
    +azimuth = zero123 +d_azimuth; radius is a ratio -> d_radius = input_distance * (ratio - 1).
    Elevation 20 / azimuth 30 / ratio 1.2: a polar-vs-elevation mix-up gives +0.349, an azimuth
    flip gives sin = -0.5, a ratio used raw gives 1.2 or 0.2."""
    (cam,) = parse_cameras({"azimuth": 30.0, "elevation": 20.0, "radius": 1.2})
    assert_T(cam, [-D(20), 0.5, math.cos(D(30)), DEFAULT_INPUT_DISTANCE * 0.2])
    assert DEFAULT_INPUT_DISTANCE == 1.85  # middle of the training range [1.5, 2.2] (docs/conventions.md, Dataset layout)
    np.testing.assert_allclose(T(cam)[3], 0.37, atol=1e-6)


def test_from_degrees_defaults_and_delta_radius():
    assert_T(RelativeCamera.from_degrees(), [0.0, 0.0, 1.0, 0.0])
    # delta_radius is zero123's raw d_radius and wins over the ratio
    assert_T(RelativeCamera.from_degrees(azimuth=-90, elevation=-45, delta_radius=-0.3), [D(45), -1.0, 0.0, -0.3])
    (cam,) = parse_cameras([{"delta_radius": 0.25, "azimuth": 180}])
    assert_T(cam, [0.0, 0.0, -1.0, 0.25])
    # a different nominal input distance
    (cam,) = parse_cameras({"radius": 0.8}, input_distance=2.0)
    assert_T(cam, [0.0, 0.0, 1.0, -0.4])


def test_demo_presets_match_spec():
    """docs/conventions.md, Cameras demo presets: 'above' = polar -90 (elevation +90), 'below' = +90, 'left' = azimuth -90."""
    assert RelativeCamera.from_degrees(elevation=90).d_polar == pytest.approx(-math.pi / 2)
    assert RelativeCamera.from_degrees(elevation=-90).d_polar == pytest.approx(math.pi / 2)
    assert T(RelativeCamera.from_degrees(azimuth=-90))[1] == pytest.approx(-1.0)


def test_user_facing_properties_round_trip():
    cam = RelativeCamera.from_degrees(azimuth=33, elevation=-12, delta_radius=0.1)
    assert cam.elevation == pytest.approx(-12) and cam.azimuth == pytest.approx(33)
    back = RelativeCamera.from_params({"azimuth": cam.azimuth, "elevation": cam.elevation, "delta_radius": cam.d_radius})
    assert T(back) == pytest.approx(T(cam))


@pytest.mark.parametrize(
    "change,match",
    [(dict(azimuth=1e9), "azimuth .* \\[-360, 360\\]"), (dict(elevation=200), "elevation .* \\[-180, 180\\]"),
     (dict(elevation=-181), "elevation")],
)
def test_absurd_changes_are_errors(change, match):
    """An azimuth change beyond a full turn or an elevation change beyond the training range of
    d_polar is refused instead of wrapping silently."""
    with pytest.raises(ValueError, match=match):
        RelativeCamera.from_degrees(**change)


def test_elevation_beyond_90_warns():
    with pytest.warns(UserWarning, match="over the pole"):
        cam = RelativeCamera.from_degrees(elevation=120)
    assert cam.d_polar == pytest.approx(-D(120))


# ---------------------------------------------------------------------- world-to-cam matrices
def test_from_world_to_cam_with_generated_matrices():
    """Cond at polar 60, azimuth 10, r 1.8; target at polar 100, azimuth 40, r 2.0 (docs/conventions.md, Cameras):
    T = [+40 deg (camera moved DOWN), sin 30, cos 30, +0.2]."""
    cond = world_to_cam_from_spherical(D(60), D(10), 1.8)
    target = world_to_cam_from_spherical(D(100), D(40), 2.0)
    cam = RelativeCamera.from_world_to_cam(cond, target)
    assert_T(cam, [D(40), 0.5, math.cos(D(30)), 0.2])
    # and the reverse: every component flips as it should
    assert_T(RelativeCamera.from_world_to_cam(target, cond), [-D(40), -0.5, math.cos(D(30)), -0.2])


def test_from_world_to_cam_with_hand_built_matrices():
    """Matrices written out by hand (Blender camera axes: rows of R = camera right, up, backwards).

    Cond: camera at C = (0, -2, 0) (front, on the equator), looking along +Y:
        right = (1, 0, 0), up = (0, 0, 1), back = (0, -1, 0); t = -R C = (0, 0, -2).
        polar 90, azimuth atan2(-2, 0) = -90, r 2.
    Target: camera at C = (1.5, 0, 1.5*sqrt(3))... i.e. r 3, polar 30, azimuth 0, looking at origin:
        back = C / 3 = (0.5, 0, sqrt3/2); right = (0, 1, 0); up = back x right = (-sqrt3/2, 0, 0.5).
    T = [30 - 90 = -60 deg, sin(0 - (-90)) = 1, cos 90 = 0, 3 - 2 = 1]. Using t as the centre
    (confusing world-to-cam with cam-to-world) would give different angles.
    """
    s3 = math.sqrt(3)
    cond = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, -2]], dtype=np.float64)
    c_t = np.array([1.5, 0.0, 1.5 * s3])
    r_t = np.array([[0, 1, 0], [-s3 / 2, 0, 0.5], [0.5, 0, s3 / 2]])
    target = np.concatenate([r_t, (-r_t @ c_t)[:, None]], axis=1)
    np.testing.assert_allclose(camera_centers_from_world_to_cams(cond), [0, -2, 0], atol=1e-12)
    np.testing.assert_allclose(camera_centers_from_world_to_cams(target), c_t, atol=1e-12)
    np.testing.assert_allclose([float(v) for v in spherical_from_world_to_cams(target)], [D(30), 0.0, 3.0], atol=1e-12)
    with pytest.warns(UserWarning, match="d_radius"):  # d_radius 1.0 is out of the training range
        cam = RelativeCamera.from_world_to_cam(cond, target)
    assert_T(cam, [-D(60), 1.0, 0.0, 1.0])
    # the hand matrices agree with our generator
    np.testing.assert_allclose(world_to_cam_from_spherical(D(90), D(-90), 2.0), cond, atol=1e-12)
    np.testing.assert_allclose(world_to_cam_from_spherical(D(30), 0.0, 3.0), target, atol=1e-12)
    # 4x4 homogeneous matrices are accepted too
    cond4 = np.vstack([cond, [0, 0, 0, 1]])
    with pytest.warns(UserWarning, match="d_radius"):
        assert_T(RelativeCamera.from_world_to_cam(cond4, target), [-D(60), 1.0, 0.0, 1.0])


@pytest.mark.parametrize("polar,azimuth", [(D(90), 0.0), (D(60), D(135)), (D(120), D(-100)), (D(5), D(30))])
def test_world_to_cam_looks_at_origin_with_z_up(polar, azimuth):
    """docs/conventions.md, Cameras: the camera looks along its -Z at the origin; image +Y is the projection of world +Z."""
    m = world_to_cam_from_spherical(polar, azimuth, 1.7)
    rot, t = m[:, :3], m[:, 3]
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_allclose(rot @ np.zeros(3) + t, [0, 0, -1.7], atol=1e-12)  # origin straight ahead
    up_in_cam = rot @ np.array([0.0, 0.0, 1.0])
    assert up_in_cam[1] > 0 and abs(up_in_cam[0]) < 1e-12  # world up points up, not sideways
    np.testing.assert_allclose([float(v) for v in spherical_from_world_to_cams(m)], [polar, azimuth, 1.7], atol=1e-12)


@pytest.mark.parametrize("polar", [0.0, math.pi])
def test_poles_are_continuous_limits(polar):
    """At the poles world +Z is the viewing axis; the frame is the limit of nearby cameras at the
    same azimuth (from above, image up points away from the azimuth direction)."""
    for azimuth in (0.0, D(70), D(-150)):
        at_pole = world_to_cam_from_spherical(polar, azimuth, 2.0)
        near = world_to_cam_from_spherical(polar + (1e-7 if polar == 0 else -1e-7), azimuth, 2.0)
        np.testing.assert_allclose(at_pole, near, atol=1e-6)
        np.testing.assert_allclose(camera_centers_from_world_to_cams(at_pole), [0, 0, 2.0 * math.cos(polar)], atol=1e-12)
    top = world_to_cam_from_spherical(0.0, 0.0, 2.0)
    np.testing.assert_allclose(top[1, :3], [-1, 0, 0], atol=1e-12)  # image up = world -X
    assert RelativeCamera.from_world_to_cam(top, world_to_cam_from_spherical(D(90), 0.0, 2.0)).d_polar == pytest.approx(math.pi / 2)


def test_look_at_and_opencv_conversion():
    m = world_to_cam_look_at([0.0, -3.0, 1.0], target=(0.0, 0.0, 1.0))
    np.testing.assert_allclose(m, [[1, 0, 0, 0], [0, 0, 1, -1], [0, -1, 0, -3]], atol=1e-12)
    cv = blender_to_opencv_world_to_cam(m)
    np.testing.assert_allclose(cv[:, :3] @ [0.0, 0.0, 1.0] + cv[:, 3], [0, 0, 3], atol=1e-12)  # +Z forward in OpenCV
    with pytest.raises(ValueError, match="coincides"):
        world_to_cam_look_at([0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.eye(3), "3x4"),
        (np.full((3, 4), np.nan), "NaN"),
        (np.hstack([2 * np.eye(3), np.zeros((3, 1))]), "rotation"),
        (np.hstack([np.diag([1.0, 1.0, -1.0]), np.zeros((3, 1))]), "rotation"),
    ],
)
def test_bad_world_to_cam_rejected(bad, match):
    good = world_to_cam_from_spherical(D(90), 0.0, 2.0)
    with pytest.raises(ValueError, match=match):
        RelativeCamera.from_world_to_cam(bad, good)


# ---------------------------------------------------------------------- other conventions
def test_from_absolute_threestudio():
    """threestudio: absolute elevation (+ = up); d_polar = cond_elev - elev, d_az = az - cond_az,
    d_r = dist - cond_dist. Input at elevation 20, azimuth 10, dist 1.8; target at elevation -10,
    azimuth 40, dist 2.0: the camera moved DOWN by 30 -> d_polar = +30."""
    expected = [D(30), 0.5, math.cos(D(30)), 0.2]
    assert_T(RelativeCamera.from_absolute(20, 10, 1.8, -10, 40, 2.0), expected)
    assert_T(RelativeCamera.from_threestudio(-10, 40, 2.0, 20, 10, 1.8), expected)
    # consistent with the matrix route (elevation e <-> polar 90 - e)
    cond = world_to_cam_from_spherical(D(90 - 20), D(10), 1.8)
    target = world_to_cam_from_spherical(D(90 + 10), D(40), 2.0)
    assert_T(RelativeCamera.from_world_to_cam(cond, target), expected)
    with pytest.raises(ValueError, match="cond_elevation.*\\[-90, 90\\]"):
        RelativeCamera.from_absolute(120, 0, 2, 0, 0, 2)
    with pytest.raises(ValueError, match="target_distance"):
        RelativeCamera.from_absolute(0, 0, 2, 0, 0, 0)


def test_azimuth_wraps_across_180():
    cam = RelativeCamera.from_absolute(0, 170, 2.0, 0, -170, 2.0)
    assert math.degrees(cam.d_azimuth) == pytest.approx(20.0)


def test_from_kiui():
    """kiui / DreamGaussian: elevation NEGATIVE = above; their elevation change goes straight into
    d_polar. Moving from kiui elevation -30 (above) to 0 (equator) is d_elev = +30 -> camera moved
    down -> d_polar = +30 deg, the same as our seed API's elevation = -30."""
    assert_T(RelativeCamera.from_kiui(30, 45, 0.1), [D(30), math.sin(D(45)), math.cos(D(45)), 0.1])
    assert T(RelativeCamera.from_kiui(30, 45, 0.1)) == pytest.approx(
        T(RelativeCamera.from_degrees(azimuth=45, elevation=-30, delta_radius=0.1))
    )


def test_from_stable_dreamfusion():
    """stable-dreamfusion: polar from its +Y up axis goes into d_polar; it feeds sin(-d_az), so
    its +30 azimuth reaches the model as sin = -0.5 (docs/conventions.md, Cameras)."""
    assert_T(RelativeCamera.from_stable_dreamfusion(15, 30, -0.2), [D(15), -0.5, math.cos(D(30)), -0.2])


def test_cond_polar_embedding_for_stable_zero123():
    """Stable Zero123: 4th slot = deg2rad(90 - input elevation), NOT d_radius (docs/conventions.md, Cameras).
    Input elevation 30 -> 60 deg = 1.0472 rad; a d_radius of 0.3 must not leak in."""
    cam = RelativeCamera.from_degrees(azimuth=30, elevation=10, delta_radius=0.3)
    assert_T(cam, [-D(10), 0.5, math.cos(D(30)), D(60)], kind="cond_polar", cond_elevation=30)
    assert_T(cam, [-D(10), 0.5, math.cos(D(30)), D(120)], kind="cond_polar", cond_elevation=-30)
    with pytest.raises(ValueError, match="cond_elevation"):
        cam.embedding("cond_polar")
    with pytest.raises(ValueError, match="\\[-90, 90\\]"):
        cam.embedding("cond_polar", cond_elevation=100)
    with pytest.raises(ValueError, match="cond_elevation.*finite"):
        cam.embedding("cond_polar", cond_elevation=float("nan"))
    with pytest.raises(ValueError, match="embedding kind"):
        cam.embedding("radius")
    stacked = embed_cameras([cam, RelativeCamera.from_degrees()], "cond_polar", 0.0)
    assert stacked.shape == (2, 4) and stacked.dtype == torch.float32
    assert stacked[:, 3].tolist() == pytest.approx([math.pi / 2] * 2)


# ---------------------------------------------------------------------- bad values and types
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), np.float64("nan"), torch.tensor(float("nan"))])
@pytest.mark.parametrize("key", ["azimuth", "elevation", "radius", "delta_radius"])
def test_non_finite_rejected(key, value):
    with pytest.raises(ValueError, match=f"'{key}'.*finite"):
        parse_cameras({key: value})


def test_non_finite_rejected_everywhere():
    with pytest.raises(ValueError, match="finite"):
        RelativeCamera(float("nan"), 0.0)
    with pytest.raises(ValueError, match="finite"):
        RelativeCamera.from_kiui(0, float("inf"))
    with pytest.raises(ValueError, match="finite"):
        RelativeCamera.from_absolute(0, 0, 2, 0, float("nan"), 2)
    with pytest.raises(ValueError, match="finite"):
        world_to_cam_from_spherical(float("nan"), 0, 2)


@pytest.mark.parametrize(
    "params,exc,match",
    [
        ("azimuth=30", TypeError, "camera_params must be a dict"),
        (["front", "back"], TypeError, r"camera_params\[0\] must be a dict"),
        ([{"azimuth": 1}, 5], TypeError, r"camera_params\[1\] must be a dict"),
        ({"azimuth": 30, "elev": 10}, ValueError, r"unknown key\(s\) \['elev'\]"),
        ({"azimuth": "30"}, TypeError, "'azimuth' must be a real number"),
        ({"azimuth": True}, TypeError, "'azimuth' must be a real number"),
        ({"radius": 1.1, "delta_radius": 0.1}, ValueError, "not both"),
        ({"radius": 0.0}, ValueError, "ratio and must be > 0"),
        ({1: 2}, TypeError, "keys must be strings"),
        ([], ValueError, "empty"),
        (None, TypeError, "camera_params must be a dict"),
        (np.array([30.0, 0.0, 1.0]), TypeError, "camera_params must be a dict"),
    ],
)
def test_wrong_typed_camera_params(params, exc, match):
    with pytest.raises(exc, match=match):
        parse_cameras(params)


def test_out_of_range_warns_but_works():
    with pytest.warns(UserWarning, match="d_radius.*training range"):
        cam = RelativeCamera.from_degrees(radius=1.5)  # 1.85 * 0.5 = 0.925 > 0.7
    assert cam.d_radius == pytest.approx(0.925)
    with pytest.warns(UserWarning, match="d_polar.*training range"):
        RelativeCamera.from_degrees(elevation=180)  # d_polar = -pi: the edge of (-pi, pi)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RelativeCamera.from_degrees(azimuth=360, elevation=89, radius=1.3)  # in range: silent


def test_parse_accepts_mixed_and_typed():
    cams = parse_cameras([RelativeCamera(0.1, 0.2, 0.0), {"azimuth": 10}, {"elevation": np.float32(5)}])
    assert len(cams) == 3 and cams[0].d_polar == pytest.approx(0.1)
    assert cams[2].d_polar == pytest.approx(-D(5))
    assert parse_cameras(({"azimuth": 1},))[0].azimuth == pytest.approx(1)
