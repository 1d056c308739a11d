"""Mesh import (issue 4 items 1b and 8): formats, textures and vertex colours kept, scenes flattened,
the normalisation of docs/conventions.md, Cameras, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image

from zero123.data.meshes import find_meshes, load_mesh


def _check_normalised(m):
    lo, hi = m.vertices.min(0), m.vertices.max(0)
    assert (hi - lo).max() == pytest.approx(1.0, abs=1e-5)  # largest bbox side 1
    np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-5)  # centred


@pytest.mark.parametrize("suffix", [".ply", ".stl", ".obj", ".glb"])
def test_formats_load_and_normalise(tmp_path, suffix):
    path = tmp_path / f"box{suffix}"
    trimesh.creation.box(extents=(2, 4, 1)).apply_translation((5, 0, 0)).export(path)
    m = load_mesh(path)
    assert m.num_faces == 12
    _check_normalised(m)


def test_vertex_colours_and_textures_kept_scene_flattened(tmp_path):
    a = trimesh.creation.box()
    a.visual.vertex_colors = np.tile([255, 0, 0, 255], (len(a.vertices), 1))
    b = trimesh.creation.box()
    tex = np.zeros((8, 8, 3), np.uint8)
    tex[:, :, 1] = 255
    uv = np.random.default_rng(0).random((len(b.vertices), 2))
    b.visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(tex))
    scene = trimesh.Scene()
    scene.add_geometry(a, transform=trimesh.transformations.translation_matrix((-1, 0, 0)))
    scene.add_geometry(b, transform=trimesh.transformations.translation_matrix((2, 0, 0)))
    path = tmp_path / "scene.glb"
    scene.export(path)
    m = load_mesh(path)
    assert m.num_faces == 24
    _check_normalised(m)
    assert (m.vertices[:, 0].max() - m.vertices[:, 0].min()) == pytest.approx(1.0, abs=1e-5)  # x: -1.5 .. 2.5
    red = np.all(np.isclose(m.colors, [1, 0, 0], atol=0.01), axis=1)
    assert red.sum() == 24 or red.sum() == 8  # box a's vertices
    assert (m.texture_index == 0).sum() > 0 and m.textures[0, 4, 4, 1] == 255


def test_bad_inputs_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mesh(tmp_path / "missing.glb")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_meshes(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="matches no files"):
        find_meshes(str(tmp_path / "*.glb"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no mesh files"):
        find_meshes(tmp_path / "empty")
    junk = tmp_path / "junk.glb"
    junk.write_bytes(b"\x00not a mesh at all")
    with pytest.raises(ValueError, match="not a mesh"):
        load_mesh(junk)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError):
        load_mesh(text)
    pts = tmp_path / "points.ply"
    trimesh.PointCloud(np.random.default_rng(0).random((10, 3))).export(pts)
    with pytest.raises(ValueError, match="no triangle faces"):
        load_mesh(pts)
    nan = tmp_path / "nan.obj"
    nan.write_text("v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match="NaN"):
        load_mesh(nan)


def test_very_large_mesh_is_refused_clearly(tmp_path):
    path = tmp_path / "big.ply"
    trimesh.creation.icosphere(subdivisions=4).export(path)  # 5120 faces
    with pytest.raises(ValueError, match="5120 faces, more than max_faces=1000"):
        load_mesh(path, max_faces=1000)
    assert load_mesh(path, max_faces=10_000).num_faces == 5120


def test_gltf_is_y_up_and_lands_z_up(tmp_path):
    """A glTF file is +Y up by specification: a box tall along +Y in the file is tall along +Z in the
    world, while the same box as PLY keeps its axes; the reconstruction's GLB round-trips."""
    tall_y = trimesh.creation.box(extents=(1, 4, 2))
    tall_y.export(tmp_path / "box.glb")
    tall_y.export(tmp_path / "box.ply")
    extent = lambda m: m.vertices.max(0) - m.vertices.min(0)  # noqa: E731
    np.testing.assert_allclose(extent(load_mesh(tmp_path / "box.glb")), [0.25, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(extent(load_mesh(tmp_path / "box.ply")), [0.25, 1.0, 0.5], atol=1e-6)
