"""Mesh import with trimesh (glb / gltf / obj / ply / stl / ...) into a :class:`RenderMesh`.

Scenes are flattened (node transforms applied), glTF files (+Y up by specification) are turned into
the z-up world (:data:`zero123.camera.WORLD_FROM_GLTF`, as Blender imports them), base-colour
textures and vertex colours are kept, and the result is normalised (docs/conventions.md, Cameras: largest bounding-box side 1, centred at the
origin). Bad files raise ``FileNotFoundError`` / ``ValueError`` with a one-line reason.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

from ..camera import GLTF_SUFFIXES, WORLD_FROM_GLTF
from ..render.mesh import RenderMesh, concatenate

#: Side of the texture layers of imported meshes (all layers of one mesh share it).
TEXTURE_SIZE = 512
MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".ply", ".stl", ".off")


def find_meshes(path_or_glob: str | os.PathLike) -> list[str]:
    """Mesh files named by a file, a folder (searched recursively) or a glob pattern."""
    s = str(path_or_glob)
    p = Path(s)
    if p.is_file():
        return [str(p)]
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in MESH_SUFFIXES and f.is_file())
        if not files:
            raise ValueError(f"--meshes folder {s!r} holds no mesh files ({', '.join(MESH_SUFFIXES)})")
        return files
    if any(c in s for c in "*?["):
        files = sorted(f for f in glob.glob(s, recursive=True) if Path(f).is_file())
        if not files:
            raise FileNotFoundError(f"--meshes pattern {s!r} matches no files")
        return files
    raise FileNotFoundError(f"--meshes path {s!r} does not exist")


def load_mesh(path: str | os.PathLike, max_faces: int = 2_000_000) -> RenderMesh:
    """Load, flatten and normalise a mesh file.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: not a mesh trimesh can read, no triangle faces, NaN/inf vertices, or more than
            ``max_faces`` faces (refused; decimate it first).
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mesh file {str(path)!r} does not exist")
    try:
        scene = trimesh.load(str(path), force="scene", process=False)
    except Exception as e:  # trimesh raises many types for unreadable files
        raise ValueError(f"{str(path)!r} is not a mesh trimesh can read: {type(e).__name__}: {e}") from None
    geoms = [g for g in _flatten(scene) if isinstance(g, trimesh.Trimesh) and len(g.faces) > 0]
    if path.suffix.lower() in GLTF_SUFFIXES:
        for g in geoms:
            g.apply_transform(WORLD_FROM_GLTF)
    if not geoms:
        raise ValueError(f"mesh {str(path)!r} has no triangle faces")
    n_faces = sum(len(g.faces) for g in geoms)
    if n_faces > max_faces:
        raise ValueError(f"mesh {str(path)!r} has {n_faces} faces, more than max_faces={max_faces}; "
                         "decimate it first or raise --max-faces")
    parts = [_to_render_mesh(g) for g in geoms]
    bad = sum(int((~np.isfinite(p.vertices)).any(1).sum()) for p in parts)
    if bad:
        raise ValueError(f"mesh {str(path)!r} has {bad} vertices with NaN or inf coordinates")
    return concatenate(parts).normalized()


def _flatten(scene) -> list:
    """World-space copies of every geometry in a trimesh scene."""
    out = []
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        g = scene.geometry[geom_name].copy()
        g.apply_transform(transform)
        out.append(g)
    return out


def _to_render_mesh(g) -> RenderMesh:
    verts = np.asarray(g.vertices, np.float64)
    faces = np.asarray(g.faces, np.int64)
    v = len(verts)
    with np.errstate(all="ignore"):
        normals = np.asarray(g.vertex_normals, np.float64) if np.all(np.isfinite(verts)) else np.tile([0.0, 0, 1], (v, 1))
    colors = np.ones((v, 3))
    uvs = np.zeros((v, 2))
    tex_index = np.full(v, -1)
    textures = np.full((1, TEXTURE_SIZE, TEXTURE_SIZE, 3), 255, np.uint8)
    visual = getattr(g, "visual", None)
    kind = getattr(visual, "kind", None)
    if kind == "texture":
        mat = visual.material
        factor = _material_color(mat)
        colors[:] = factor
        image = getattr(mat, "baseColorTexture", None) or getattr(mat, "image", None)
        if image is not None and visual.uv is not None and len(visual.uv) == v:
            uvs = np.asarray(visual.uv, np.float64)
            tex_index[:] = 0
            textures = _texture_layer(image)[None]
    elif kind in ("vertex", "face"):
        vc = np.asarray(visual.vertex_colors, np.float64)
        if vc.shape[0] == v:
            colors = vc[:, :3] / 255.0
    return RenderMesh(verts, faces, normals, colors, uvs, tex_index, textures)


def _material_color(mat) -> np.ndarray:
    for attr in ("baseColorFactor", "diffuse"):
        c = getattr(mat, attr, None)
        if c is not None:
            c = np.asarray(c, np.float64).reshape(-1)[:3]
            return c / 255.0 if c.max() > 1.0 else c
    return np.ones(3)


def _texture_layer(image) -> np.ndarray:
    from PIL import Image

    img = image.convert("RGB")
    if img.size != (TEXTURE_SIZE, TEXTURE_SIZE):
        img = img.resize((TEXTURE_SIZE, TEXTURE_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(img, np.uint8)
