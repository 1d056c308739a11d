"""UV texture of an extracted mesh: xatlas unwrap, bake from the field, project images, dilate seams.

Steps (:func:`bake_texture`):

1. **Unwrap** with xatlas: vertices on chart seams are split, so the textured mesh has more
   vertices than the extracted one (``vertex_map`` says which one each came from).
2. **Rasterise the UV triangles** into a ``size`` x ``size`` texel grid (pure PyTorch, the
   renderer's barycentrics): each covered texel gets its face and barycentric weights, hence its
   3D position and normal.
3. **Field colour** of each texel: the field seen from just outside along the normal
   (:func:`zero123.threed.mesh.surface_colors`).
4. **Image projection**: each :class:`ProjectedImage` (the input photo in the fast route, the
   training views in the posed-views route) is projected onto the texels it sees: visible when the
   texel's depth in that camera is within a tolerance of the mesh's depth map there (the torch
   renderer's z-buffer), weighted by ``max(0, cos(normal, view)) ** cos_power``; the texel colour is
   the weighted mean of the projections and the field colour (weight ``field_weight``).
5. **Seam dilation**: empty texels take the colour of the nearest covered texel, so bilinear
   filtering and mipmaps never bleed background into the seams.

UVs have their origin at the texture's bottom-left (OBJ/glTF readers flip as they need); texture
row 0 is the top of the image, as stored in files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..camera import focal_length_px, project_points
from ..render.mesh import RenderMesh, vertex_normals
from ..render.torch_backend import TorchRenderer, _barycentric
from ._deps import require
from .field import RadianceField
from .mesh import ExtractedMesh, surface_colors


@dataclass(frozen=True)
class TextureSettings:
    """Settings of :func:`bake_texture`.

    Attributes:
        size: texture side in texels.
        padding: texels between xatlas charts.
        cos_power: exponent of the view-angle weight of projected images.
        field_weight: weight of the field colour against projected images (a frontal view has
            weight 1 times its image weight).
        depth_tolerance: visibility tolerance as a share of the depth (plus two pixel footprints).
        dilate: fill empty texels from their nearest covered neighbour.
    """

    size: int = 512
    padding: int = 2
    cos_power: float = 2.0
    field_weight: float = 0.05
    depth_tolerance: float = 0.01
    dilate: bool = True

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 16 <= self.size <= 8192:
            raise ValueError(f"texture size must be an integer in [16, 8192], got {self.size!r}")
        if self.field_weight < 0 or self.cos_power < 0 or self.depth_tolerance < 0:
            raise ValueError("texture field_weight, cos_power and depth_tolerance must be >= 0")


@dataclass
class ProjectedImage:
    """An image to project onto the texture.

    Attributes:
        rgb: ``(H, W, 3)`` float32 straight colour in [0, 1] (square).
        world_to_cam: ``(3, 4)`` world-to-camera matrix (Blender camera axes).
        fov_deg: horizontal field of view.
        alpha: ``(H, W)`` float32 silhouette; texels projecting where alpha <= 0.5 are not coloured
            by this image (None: everywhere).
        weight: how much this image counts against the others.
    """

    rgb: np.ndarray
    world_to_cam: np.ndarray
    fov_deg: float = 49.13
    alpha: np.ndarray | None = None
    weight: float = 1.0


@dataclass
class TexturedMesh:
    """A mesh with UVs and a texture, in the same world frame as the mesh it came from.

    Attributes:
        vertices: ``(V, 3)`` float32 (seam vertices duplicated).
        faces: ``(F, 3)`` int32, counter-clockwise seen from outside.
        uvs: ``(V, 2)`` float32 texture coordinates, origin at the bottom-left.
        texture: ``(S, S, 3)`` uint8, row 0 = top.
        vertex_colors: ``(V, 3)`` float32 colours copied from the source mesh.
        vertex_map: ``(V,)`` int64 index of each vertex in the source mesh.
        coverage: share of texels inside a chart.
        timings: seconds per step.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    texture: np.ndarray
    vertex_colors: np.ndarray
    vertex_map: np.ndarray
    coverage: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_render_mesh(self) -> RenderMesh:
        """A :class:`~zero123.render.RenderMesh` textured with :attr:`texture` (white vertex colours)."""
        v = len(self.vertices)
        return RenderMesh(self.vertices, self.faces, vertex_normals(self.vertices, self.faces), np.ones((v, 3), np.float32),
                          self.uvs, np.zeros(v, np.int32), self.texture[None])


def unwrap(vertices: np.ndarray, faces: np.ndarray, size: int = 512, padding: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xatlas UV unwrap: ``(vertex_map (V',), faces (F, 3), uvs (V', 2) in [0, 1], origin bottom-left)``."""
    xatlas = require("xatlas")
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(faces, np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = size
    pack.padding = padding
    atlas.generate(pack_options=pack)
    vmap, new_faces, uvs = atlas[0]
    return vmap.astype(np.int64), new_faces.astype(np.int32), uvs.astype(np.float32)


def rasterize_uv(uvs: np.ndarray, faces: np.ndarray, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which face covers each texel centre: ``(face (S, S) int64, -1 = none; barycentrics (S, S, 3))``.

    Texel ``(row i, column j)`` has its centre at ``u = (j + 0.5) / S``, ``v = 1 - (i + 0.5) / S``.
    """
    uv = torch.from_numpy(np.asarray(uvs, np.float64))
    f = torch.from_numpy(np.asarray(faces, np.int64))
    fx = uv[f, 0] * size  # (F, 3) texel-space x (columns)
    fy = (1.0 - uv[f, 1]) * size  # rows, 0 at the top
    x0 = torch.floor(fx.min(1).values - 0.5).clamp(0, size - 1).long()
    x1 = torch.ceil(fx.max(1).values - 0.5).clamp(0, size - 1).long()
    y0 = torch.floor(fy.min(1).values - 0.5).clamp(0, size - 1).long()
    y1 = torch.ceil(fy.max(1).values - 0.5).clamp(0, size - 1).long()
    face_of = torch.full((size * size,), -1, dtype=torch.int64)
    bary = torch.zeros((size * size, 3), dtype=torch.float64)
    side = torch.maximum(x1 - x0, y1 - y0) + 1
    bucket = torch.ceil(torch.log2(side.double())).long().clamp_min(0)
    for b in torch.unique(bucket).tolist():
        ids = torch.nonzero(bucket == b).squeeze(1)
        n = 1 << b
        oy, ox = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        ox, oy = ox.reshape(1, -1), oy.reshape(1, -1)
        for s in range(0, len(ids), max(1, 2_000_000 // (n * n))):
            fi = ids[s:s + max(1, 2_000_000 // (n * n))]
            px, py = x0[fi, None] + ox, y0[fi, None] + oy
            w0, w1, w2 = _barycentric(fx[fi], fy[fi], px.double() + 0.5, py.double() + 0.5)
            inside = (px <= x1[fi, None]) & (py <= y1[fi, None]) & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
            pix = (py * size + px)[inside]
            face_of[pix] = fi[:, None].expand_as(px)[inside]
            bary[pix] = torch.stack([w0, w1, w2], -1)[inside]
    return face_of.reshape(size, size), bary.reshape(size, size, 3)


def project_images(points: np.ndarray, normals: np.ndarray, mesh: RenderMesh, images: list[ProjectedImage],
                   settings: TextureSettings) -> tuple[np.ndarray, np.ndarray]:
    """Weighted colour sums of images projected onto surface points ``(N, 3)`` with normals ``(N, 3)``:
    ``(sum of weight * colour (N, 3), sum of weights (N,))`` (see the module docstring, step 4)."""
    acc = np.zeros((len(points), 3))
    wsum = np.zeros(len(points))
    for img in images:
        h = img.rgb.shape[0]
        renderer = TorchRenderer(image_size=h, fov_deg=img.fov_deg, supersample=1)
        depth_map = renderer.depth(mesh, img.world_to_cam[None])[0]
        m = np.asarray(img.world_to_cam, np.float64)
        px, depth = project_points(points, m, img.fov_deg, h)
        x, y, depth = px[:, 0].numpy(), px[:, 1].numpy(), depth.numpy()
        focal = focal_length_px(img.fov_deg, h)
        col, row = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
        inside = (depth > 1e-3) & (col >= 0) & (col < h) & (row >= 0) & (row < h)
        col, row = np.clip(col, 0, h - 1), np.clip(row, 0, h - 1)
        tol = settings.depth_tolerance * depth + 2 * depth / focal
        visible = inside & (depth <= depth_map[row, col] + tol)
        if img.alpha is not None:
            visible &= img.alpha[row, col] > 0.5
        center = -m[:, :3].T @ m[:, 3]
        view = center[None] - points
        cos = np.einsum("ij,ij->i", normals, view / np.linalg.norm(view, axis=1, keepdims=True))
        w = np.where(visible, np.clip(cos, 0, 1) ** settings.cos_power, 0.0) * img.weight
        acc += w[:, None] * _bilinear(img.rgb, x, y)
        wsum += w
    return acc, wsum


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of ``image`` ``(H, W, 3)`` at pixel coordinates (centres at ``i + 0.5``), clamped."""
    h, w = image.shape[:2]
    xs, ys = np.clip(x - 0.5, 0, w - 1), np.clip(y - 0.5, 0, h - 1)
    x0, y0 = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (xs - x0)[:, None], (ys - y0)[:, None]
    return ((1 - fx) * (1 - fy) * image[y0, x0] + fx * (1 - fy) * image[y0, x1]
            + (1 - fx) * fy * image[y1, x0] + fx * fy * image[y1, x1])


def dilate(texture: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Empty texels (``filled == False``) take the colour of the nearest filled texel."""
    from scipy import ndimage

    if filled.all() or not filled.any():
        return texture
    _, (rows, cols) = ndimage.distance_transform_edt(~filled, return_indices=True)
    return texture[rows, cols]


def bake_texture(mesh: ExtractedMesh, field_: RadianceField, settings: TextureSettings = TextureSettings(),
                 images: list[ProjectedImage] = ()) -> TexturedMesh:
    """UV-unwrap ``mesh`` and bake its texture (see the module docstring)."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    size = settings.size

    # 1. Unwrap
    vmap, faces, uvs = unwrap(mesh.vertices, mesh.faces, size, settings.padding)
    vertices = mesh.vertices[vmap]
    normals = mesh.vertex_normals[vmap]
    timings["unwrap"] = time.perf_counter() - t

    # 2. Texels -> faces, 3D positions and normals
    t = time.perf_counter()
    face_of, bary = rasterize_uv(uvs, faces, size)
    filled = (face_of >= 0).numpy()
    fid = face_of[face_of >= 0].numpy()
    w = bary[face_of >= 0].numpy()
    tri = faces[fid]
    points = np.einsum("nk,nkc->nc", w, vertices[tri].astype(np.float64))
    nrm = np.einsum("nk,nkc->nc", w, normals[tri].astype(np.float64))
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    timings["rasterize"] = time.perf_counter() - t

    # 3. Field colour seen along the normals
    t = time.perf_counter()
    dev = next(field_.parameters()).device
    colors = surface_colors(field_, torch.from_numpy(points).float().to(dev), torch.from_numpy(nrm).float().to(dev))
    colors = colors.cpu().numpy().astype(np.float64)
    timings["field_colors"] = time.perf_counter() - t

    # 4. Images projected onto the texels they see
    t = time.perf_counter()
    if images:
        render_mesh = RenderMesh.from_arrays(mesh.vertices, mesh.faces, normals=mesh.vertex_normals)
        acc, wsum = project_images(points, nrm, render_mesh, list(images), settings)
        colors = (colors * settings.field_weight + acc) / (settings.field_weight + wsum)[:, None]
    timings["projection"] = time.perf_counter() - t

    # 5. Texture image and seam dilation
    t = time.perf_counter()
    texture = np.zeros((size, size, 3), np.uint8)
    texture[filled] = (np.clip(colors, 0, 1) * 255 + 0.5).astype(np.uint8)
    if settings.dilate:
        texture = dilate(texture, filled)
    timings["dilate"] = time.perf_counter() - t
    return TexturedMesh(vertices.astype(np.float32), faces, uvs, texture, mesh.vertex_colors[vmap], vmap,
                        float(filled.mean()), timings)
