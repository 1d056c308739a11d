"""The camera convention end to end (issue 4 item 6; docs/conventions.md, Cameras).

A cube with a coloured plate on each side (+X red, -X green, +Y blue, -Y yellow, +Z magenta,
-Z cyan) is rendered at a condition pose; each user-facing camera change goes through
``RelativeCamera.from_degrees``; the target pose is rendered; the two written ``.npy`` files must
give the camera API's T, and the side that must come into view does, checked in image space.

Hand derivation of the expectations, condition camera at polar 60, azimuth 20, distance 1.8:
its direction is (sin60 cos20, sin60 sin20, cos60) = (0.81, 0.30, 0.50), so +X (red) faces it
most, +Y (blue) a little, from the image's RIGHT (camera right = forward x up = (-0.34, 0.94, 0)),
and the top (magenta) is in the upper half of the image. +azimuth is counter-clockwise seen from
+Z (docs/conventions.md, Cameras): azimuth +90 -> direction (-0.30, 0.81, 0.5): blue; -90 -> (0.30, -0.81, 0.5):
yellow; 180 -> (-0.81, -0.30, 0.5): green. Elevation +30 (camera UP, d_polar = -30 deg) -> polar 30:
the top (magenta) dominates; elevation -30 -> polar 90 (equator): the top is seen edge-on.
Radius ratio 1.2 shrinks the object's image area by about 1/1.2^2. A mirrored renderer or a
flipped azimuth sign would swap blue and yellow and put blue on the left.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zero123.camera import RelativeCamera, spherical_from_world_to_cams, world_to_cam_from_spherical
from zero123.data.objects import marker_cube
from zero123.data.views_release import ViewsReleaseDataset
from zero123.data.writer import write_views
from zero123.render import Light, create_renderer
from zero123.render.gl_backend import gl_available

COLORS = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255),
    "yellow": (255, 255, 0), "magenta": (255, 0, 255), "cyan": (0, 255, 255),
}
SIDES = ("red", "green", "blue", "yellow")
COND = (math.radians(60), math.radians(20), 1.8)
SIZE = 96
FLAT = Light(direction=(0.0, 0.0, 1.0), intensity=0.0, ambient=1.0)  # albedo only: exact colours

# (user change, the side marker that must dominate the target view)
CASES = [
    (dict(azimuth=90), "blue"),
    (dict(azimuth=-90), "yellow"),
    (dict(azimuth=180), "green"),
    (dict(elevation=30), "magenta"),
    (dict(elevation=-30), "red"),
    (dict(radius=1.2), "red"),
]

BACKENDS = ["torch", pytest.param("gl", marks=pytest.mark.skipif(not gl_available(), reason="no EGL here"))]


def _counts(img: np.ndarray) -> dict[str, int]:
    rgb = img[..., :3].astype(int)
    solid = img[..., 3] == 255
    return {k: int((solid & (np.abs(rgb - np.array(c)).sum(-1) < 30)).sum()) for k, c in COLORS.items()}


def _centroid(img: np.ndarray, color: str) -> tuple[float, float]:
    rgb = img[..., :3].astype(int)
    ys, xs = np.nonzero((img[..., 3] == 255) & (np.abs(rgb - np.array(COLORS[color])).sum(-1) < 30))
    return float(xs.mean()), float(ys.mean())


@pytest.fixture(scope="module", params=BACKENDS)
def renders(request, tmp_path_factory):
    """Render condition + every target, write them as one views_release object, return what is needed."""
    root = tmp_path_factory.mktemp(f"convention_{request.param}")
    renderer = create_renderer(request.param, image_size=SIZE)
    cond = world_to_cam_from_spherical(*COND)
    cams, targets = [], [cond]
    for change, _ in CASES:
        cam = RelativeCamera.from_degrees(**change, input_distance=COND[2])
        cams.append(cam)
        targets.append(world_to_cam_from_spherical(*cam.apply_to_spherical(*COND)))
    images = renderer.render(marker_cube(), np.stack(targets), FLAT)
    renderer.close()
    (root / "obj").mkdir()
    write_views(root / "obj", images, np.stack(targets))
    (root / "valid_paths.json").write_text('["obj"]')
    return root, images, cams


def test_condition_view_orientation(renders):
    """docs/conventions.md, Cameras: +Y (blue) appears on the image right, the top (magenta) in the upper half; no -Y, -X."""
    _, images, _ = renders
    img = images[0]
    c = _counts(img)
    assert max(SIDES, key=c.get) == "red"
    assert c["blue"] > 50 and c["yellow"] == 0 and c["green"] == 0
    assert _centroid(img, "blue")[0] > SIZE / 2
    assert _centroid(img, "magenta")[1] < SIZE / 2


@pytest.mark.parametrize("case", range(len(CASES)), ids=[str(c[0]) for c in CASES])
def test_camera_change_brings_expected_side_into_view(renders, case):
    """The marker the hand derivation predicts dominates the target view (module docstring)."""
    _, images, _ = renders
    change, expected = CASES[case]
    cond_counts, c = _counts(images[0]), _counts(images[case + 1])
    if expected == "magenta":
        assert c["magenta"] > max(c[s] for s in SIDES)
        assert c["magenta"] > 1.5 * cond_counts["magenta"]
    else:
        assert max(SIDES, key=c.get) == expected, c
    if change.get("elevation") == -30:  # on the equator the top plate is edge-on
        assert c["magenta"] < 0.15 * cond_counts["magenta"]
    if "radius" in change:  # farther away: smaller by about 1 / 1.2^2
        ratio = (images[case + 1][..., 3] > 127).sum() / (images[0][..., 3] > 127).sum()
        assert 0.6 < ratio < 0.8, ratio
    if change.get("azimuth") == 90:  # the -X side (green) now shows on the right
        assert _centroid(images[case + 1], "green")[0] > SIZE / 2


@pytest.mark.parametrize("case", range(len(CASES)), ids=[str(c[0]) for c in CASES])
def test_written_matrices_give_camera_api_T(renders, case):
    """The T the TRAINER feeds for the written pair (view 0 -> view case + 1), and the T the dataset
    reader returns for it, both equal the camera API's T for the user's change."""
    from zero123.train.data import ViewSource, open_dataset

    root, _, cams = renders
    t_api = cams[case].embedding()
    # 1. the trainer's path: dataset -> ViewSource -> micro-batch, with the pair fixed
    source = ViewSource(open_dataset(root, split="all", image_size=SIZE, seed=0, camera_embedding="relative_radius"),
                        "relative_radius", use_cache=False)
    batch = source.batch(lambda k, attempt=0: (0, 0, case + 1), [0])
    torch.testing.assert_close(batch.pose[0], t_api, atol=1e-5, rtol=0)
    # 2. the dataset reader's item for the same pair
    ds = ViewsReleaseDataset(root, split="all", image_size=SIZE)
    ds.sample_pair = lambda index: (0, case + 1)
    torch.testing.assert_close(ds[0]["pose"], t_api, atol=1e-5, rtol=0)
    # the file round-trip keeps float64 3x4 matrices
    raw = np.load(root / "obj" / f"{case + 1:03d}.npy")
    assert raw.dtype == np.float64 and raw.shape == (3, 4)
    # and the target camera really sits where the user asked (elevation + = up, radius ratio)
    cond, target = ds.load_world_to_cam("obj", 0), ds.load_world_to_cam("obj", case + 1)
    (pc, pt), _, (rc, rt) = (x.tolist() for x in spherical_from_world_to_cams(np.stack([cond, target])))
    change = CASES[case][0]
    assert math.degrees(pc - pt) == pytest.approx(change.get("elevation", 0.0), abs=1e-6)
    assert rt / rc == pytest.approx(change.get("radius", 1.0), abs=1e-9)


def test_written_matrices_look_at_origin_with_y_up(renders):
    """Every written matrix: rotation orthonormal (det +1), -Z looks at the origin, +Y is up (docs/conventions.md, Cameras)."""
    root, _, _ = renders
    for path in sorted((root / "obj").glob("*.npy")):
        m = np.load(path)
        rot, t = m[:, :3], m[:, 3]
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(rot) == pytest.approx(1.0, abs=1e-9)
        center = -rot.T @ t
        looking = -rot[2]  # camera -Z in world coordinates
        np.testing.assert_allclose(looking, -center / np.linalg.norm(center), atol=1e-9)
        np.testing.assert_allclose(t, [0, 0, -np.linalg.norm(center)], atol=1e-9)  # origin on the optical axis
        up = rot[1]  # camera +Y in world coordinates
        assert up[2] > 0, f"{path.name}: camera +Y points down"
        assert abs(up @ looking) < 1e-9
