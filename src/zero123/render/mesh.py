"""What the renderers draw: one triangle mesh with vertex colours and optional textures, and one light.

Both backends (:mod:`zero123.render.torch_backend`, :mod:`zero123.render.gl_backend`) take the
same :class:`RenderMesh` and :class:`Light`, so their images can be compared pixel for pixel.

Shading (both backends): ``rgb = albedo * (ambient + intensity * max(0, n . l))`` with ``n`` the
interpolated vertex normal turned towards the camera (two-sided) and ``l`` the unit direction
*towards* the light, in world coordinates. ``albedo = vertex colour * texture colour`` (texture
colour is 1 where a vertex has no texture).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RenderMesh:
    """A triangle mesh ready to render.

    Attributes:
        vertices: ``(V, 3)`` float32 positions, world units (z-up).
        faces: ``(F, 3)`` int32 vertex indices.
        normals: ``(V, 3)`` float32 unit vertex normals.
        colors: ``(V, 3)`` float32 vertex colours in [0, 1] (multiplied with the texture).
        uvs: ``(V, 2)`` float32 texture coordinates, origin at the texture's BOTTOM-left (OBJ/OpenGL
            convention); wrapped (repeat) outside [0, 1].
        texture_index: ``(V,)`` int32 layer of :attr:`textures` used by the vertex, -1 = untextured.
            All vertices of one face must use the same layer.
        textures: ``(L, S, S, 3)`` uint8 texture layers, row 0 = TOP of the image (as stored in files).
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    colors: np.ndarray
    uvs: np.ndarray
    texture_index: np.ndarray
    textures: np.ndarray

    def __post_init__(self):
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32)
        self.normals = np.ascontiguousarray(self.normals, dtype=np.float32)
        self.colors = np.ascontiguousarray(self.colors, dtype=np.float32)
        self.uvs = np.ascontiguousarray(self.uvs, dtype=np.float32)
        self.texture_index = np.ascontiguousarray(self.texture_index, dtype=np.int32)
        self.textures = np.ascontiguousarray(self.textures, dtype=np.uint8)
        self.validate()

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field, the rule and the value when the mesh is unusable."""
        v = self.num_vertices
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"mesh vertices must have shape (V, 3), got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"mesh faces must have shape (F, 3), got {self.faces.shape}")
        if self.num_faces == 0:
            raise ValueError("mesh has no faces; nothing to render")
        if not np.all(np.isfinite(self.vertices)):
            raise ValueError(f"mesh has {int((~np.isfinite(self.vertices)).any(1).sum())} vertices with NaN or inf coordinates")
        if self.faces.min() < 0 or self.faces.max() >= v:
            raise ValueError(f"mesh face indices must be in [0, {v}), got range [{self.faces.min()}, {self.faces.max()}]")
        for name, width in (("normals", 3), ("colors", 3), ("uvs", 2)):
            arr = getattr(self, name)
            if arr.shape != (v, width):
                raise ValueError(f"mesh {name} must have shape ({v}, {width}), got {arr.shape}")
        if self.texture_index.shape != (v,):
            raise ValueError(f"mesh texture_index must have shape ({v},), got {self.texture_index.shape}")
        n_layers = self.textures.shape[0] if self.textures.ndim == 4 else 0
        if self.textures.ndim != 4 or self.textures.shape[3] != 3 or self.textures.shape[1] != self.textures.shape[2]:
            raise ValueError(f"mesh textures must have shape (L, S, S, 3), got {self.textures.shape}")
        if self.texture_index.max(initial=-1) >= n_layers or self.texture_index.min(initial=-1) < -1:
            raise ValueError(f"mesh texture_index must be in [-1, {n_layers}), got range "
                             f"[{self.texture_index.min()}, {self.texture_index.max()}]")

    @classmethod
    def from_arrays(cls, vertices, faces, colors=None, normals=None, uvs=None, texture_index=None, textures=None) -> "RenderMesh":
        """Build a mesh filling defaults: white colours, smooth normals, no texture."""
        vertices = np.asarray(vertices, dtype=np.float32)
        faces = np.asarray(faces, dtype=np.int32).reshape(-1, 3)
        v = vertices.shape[0]
        if colors is None:
            colors = np.ones((v, 3), np.float32)
        colors = np.broadcast_to(np.asarray(colors, np.float32), (v, 3))
        if normals is None:
            ok = faces.size and faces.min() >= 0 and faces.max() < v and np.all(np.isfinite(vertices))
            normals = vertex_normals(vertices, faces) if ok else np.tile(np.float32([0, 0, 1]), (v, 1))
        if uvs is None:
            uvs = np.zeros((v, 2), np.float32)
        if texture_index is None:
            texture_index = np.full((v,), -1, np.int32)
        if textures is None:
            textures = np.full((1, 1, 1, 3), 255, np.uint8)
        return cls(vertices, faces, normals, colors, uvs, texture_index, textures)

    def normalized(self) -> "RenderMesh":
        """Copy scaled so the largest bounding-box side is 1 and centred (bbox centre) at the origin
        (docs/conventions.md, Dataset layout)."""
        verts, _, _ = normalize_vertices(self.vertices)
        return RenderMesh(verts, self.faces, self.normals, self.colors, self.uvs, self.texture_index, self.textures)


def normalize_vertices(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The dataset normalisation (docs/conventions.md, Dataset layout): ``(vertices - center) / scale`` with ``center`` the
    bounding-box centre and ``scale`` its largest side. Returns ``(normalised (V, 3), center (3,), scale)``.

    >>> normalize_vertices(np.array([[0.0, 0, 0], [2, 1, 0]]))[0].tolist()
    [[-0.5, -0.25, 0.0], [0.5, 0.25, 0.0]]
    """
    vertices = np.asarray(vertices)
    lo, hi = vertices.min(0), vertices.max(0)
    extent = float((hi - lo).max())
    if not extent > 0:
        raise ValueError(f"mesh is degenerate: bounding box largest side is {extent}")
    center = (lo + hi) / 2
    return (vertices - center) / extent, center, extent


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``(V, 3)``; isolated vertices get +Z."""
    vertices = np.asarray(vertices, np.float64)
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    norm = np.linalg.norm(vn, axis=1, keepdims=True)
    vn = np.where(norm > 1e-20, vn / np.maximum(norm, 1e-20), np.array([0.0, 0.0, 1.0]))
    return vn.astype(np.float32)


def concatenate(meshes: list[RenderMesh]) -> RenderMesh:
    """Merge meshes into one; texture layers are stacked (all layers must have the same size)."""
    if not meshes:
        raise ValueError("concatenate needs at least one mesh")
    sizes = {m.textures.shape[1] for m in meshes}
    if len(sizes) != 1:
        raise ValueError(f"texture layers must all have the same size to be merged, got sizes {sorted(sizes)}")
    verts, faces, normals, colors, uvs, tidx, texs = [], [], [], [], [], [], []
    v_off = 0
    l_off = 0
    for m in meshes:
        verts.append(m.vertices)
        faces.append(m.faces + v_off)
        normals.append(m.normals)
        colors.append(m.colors)
        uvs.append(m.uvs)
        tidx.append(np.where(m.texture_index >= 0, m.texture_index + l_off, -1))
        texs.append(m.textures)
        v_off += m.num_vertices
        l_off += m.textures.shape[0]
    return RenderMesh(np.concatenate(verts), np.concatenate(faces), np.concatenate(normals), np.concatenate(colors),
                      np.concatenate(uvs), np.concatenate(tidx), np.concatenate(texs))


@dataclass(frozen=True)
class Light:
    """One directional light plus ambient (world frame, z-up).

    Attributes:
        direction: unit vector from the object TOWARDS the light.
        intensity: diffuse strength.
        ambient: ambient strength.
    """

    direction: tuple[float, float, float] = (0.3, -0.4, 0.866)
    intensity: float = 0.7
    ambient: float = 0.4

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Light":
        """A random light per object, as the original renders had one random light per object.

        Direction: uniform on the sphere, folded into the upper hemisphere two times out of three
        (lights mostly from above, like a studio). Intensity U[0.5, 0.9], ambient U[0.3, 0.5].
        """
        d = rng.normal(size=3)
        d /= np.linalg.norm(d) + 1e-12
        if rng.random() < 2 / 3:
            d[2] = abs(d[2])
        return cls(tuple(float(x) for x in d), float(rng.uniform(0.5, 0.9)), float(rng.uniform(0.3, 0.5)))
