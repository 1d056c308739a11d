"""Renderer backends (issue 4 item 2): shared interface, anti-aliased exact alpha, backends agree.

Camera model: docs/conventions.md, Dataset layout (49.13 deg horizontal FOV); poses: docs/conventions.md, Cameras (world-to-camera,
Blender camera axes).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from zero123.camera import world_to_cam_from_spherical
from zero123.data.cameras import sample_world_to_cams
from zero123.data.objects import procedural_object
from zero123.render import Light, RenderMesh, create_renderer
from zero123.render.gl_backend import gl_available

needs_gl = pytest.mark.skipif(not gl_available(), reason="moderngl EGL context unavailable here")
BACKENDS = ["torch", pytest.param("gl", marks=needs_gl)]


def _square(half: float = 0.5) -> RenderMesh:
    """A square in the plane x = 0 facing +X, side 2 * half."""
    v = [(0, -half, -half), (0, half, -half), (0, half, half), (0, -half, half)]
    return RenderMesh.from_arrays(v, [(0, 1, 2), (0, 2, 3)], colors=(0.2, 0.6, 1.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_square_coverage_matches_pinhole_projection(backend):
    """A square of side 1 at distance 2 covers (f / 2)^2 pixels, f = (W/2) / tan(49.13/2 deg)."""
    size = 64
    r = create_renderer(backend, image_size=size)
    img = r.render(_square(), world_to_cam_from_spherical(math.pi / 2, 0.0, 2.0)[None], Light(ambient=1.0, intensity=0.0))[0]
    f = (size / 2) / math.tan(math.radians(49.13) / 2)
    expected = (f * 0.5 / 2 * 2) ** 2
    assert img[..., 3].sum() / 255.0 == pytest.approx(expected, rel=0.02)
    # background is fully transparent; interior fully opaque with the exact albedo (flat light)
    assert img[0, 0, 3] == 0 and img[size // 2, size // 2, 3] == 255
    np.testing.assert_allclose(img[size // 2, size // 2, :3], [51, 153, 255], atol=1)
    # anti-aliased: the edge has partial alpha, and straight (not premultiplied) colour there
    edge = (img[..., 3] > 20) & (img[..., 3] < 235)
    assert edge.sum() > 0
    np.testing.assert_allclose(img[edge][:, :3].mean(0), [51, 153, 255], atol=12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_up_and_right_in_image(backend):
    """Camera on +X looking at the origin (docs/conventions.md, Cameras): world +Z is image up, world +Y is image right."""
    size = 64
    mesh = RenderMesh.from_arrays([(0, 0, 0.2), (0, 0.3, 0.2), (0, 0, 0.5)], [(0, 1, 2)])  # upper, right of centre
    img = create_renderer(backend, image_size=size).render(mesh, world_to_cam_from_spherical(math.pi / 2, 0.0, 2.0)[None])[0]
    ys, xs = np.nonzero(img[..., 3] > 127)
    assert ys.max() < size / 2 and xs.min() >= size / 2 - 1


@needs_gl
def test_backends_agree_on_procedural_objects():
    """gl and torch: alpha IoU > 0.98 and close colours on textured, multi-part objects."""
    rng = np.random.default_rng(0)
    gl, th = create_renderer("gl", image_size=128), create_renderer("torch", image_size=128)
    for seed in range(2):
        mesh = procedural_object(seed)
        cams = sample_world_to_cams(rng, 1)
        light = Light.random(rng)
        a, b = gl.render(mesh, cams, light), th.render(mesh, cams, light)
        # soft IoU of the alpha mattes: with 4 MSAA samples (gl) vs 3x3 supersampling (torch) a hard
        # threshold at 0.5 is biased (gl edge pixels are exactly 0.5 much more often)
        fa, fb = a[..., 3] / 255.0, b[..., 3] / 255.0
        iou = np.minimum(fa, fb).sum() / np.maximum(fa, fb).sum()
        assert iou > 0.98, iou
        both = (a[..., 3] == 255) & (b[..., 3] == 255)
        assert np.abs(a[..., :3].astype(int) - b[..., :3])[both].mean() < 6


def test_renderer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        create_renderer("vulkan")
    with pytest.raises(ValueError, match="image_size"):
        create_renderer("torch", image_size=3)


def test_mesh_validation_names_the_problem():
    with pytest.raises(ValueError, match="no faces"):
        RenderMesh.from_arrays(np.zeros((3, 3)), np.zeros((0, 3), int))
    with pytest.raises(ValueError, match="NaN"):
        RenderMesh.from_arrays([(0, 0, 0), (1, 0, 0), (0, float("nan"), 0)], [(0, 1, 2)])
    with pytest.raises(ValueError, match="face indices"):
        RenderMesh.from_arrays(np.zeros((3, 3)), [(0, 1, 5)])
