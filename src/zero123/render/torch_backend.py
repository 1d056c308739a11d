"""Pure-PyTorch triangle rasterizer: no system packages, always available, the reference backend.

Algorithm (per view):

1. Vertices to Blender camera space ``X_c = R X + t`` (camera looks along -Z, +Y up), depth
   ``d = -z_c``, pinhole projection on a ``supersample``-times finer pixel grid:
   ``x = W/2 + f x_c / d``, ``y = H/2 - f y_c / d`` (pixel centres at ``i + 0.5``).
2. Each face is tested against the pixel centres of its bounding box (faces are bucketed by box
   size so the work is vectorised); covered samples write ``(depth, face)`` packed in one int64
   into a z-buffer with ``scatter_reduce(amin)``: the nearest face wins.
3. Perspective-correct barycentrics of the winning face give normal, colour and UV; shading is
   Lambert + ambient (see :mod:`zero123.render.mesh`).
4. Premultiplied colour and coverage are averaged over each ``supersample x supersample`` block
   (anti-aliasing); alpha is the exact covered fraction and colour is un-premultiplied.
"""

from __future__ import annotations

import numpy as np
import torch

from ..camera import focal_length_px
from .mesh import Light, RenderMesh

_FACE_BITS = 31
_DEPTH_SCALE = float(2**31 - 1) / 64.0  # depths up to 64 world units


class TorchRenderer:
    """Render :class:`RenderMesh` views with plain PyTorch on the CPU (or any torch device)."""

    backend = "torch"

    def __init__(self, image_size: int = 256, fov_deg: float = 49.13, supersample: int = 3, device: str = "cpu",
                 max_candidates: int = 4_000_000):
        self.image_size = int(image_size)
        self.fov_deg = float(fov_deg)
        self.supersample = int(supersample)
        self.device = torch.device(device)
        self.max_candidates = int(max_candidates)

    def close(self) -> None:  # same interface as the GL backend
        pass

    @torch.no_grad()
    def render(self, mesh: RenderMesh, world_to_cams: np.ndarray, light: Light = Light()) -> np.ndarray:
        """Render ``N`` views.

        Args:
            mesh: the mesh.
            world_to_cams: ``(N, 3, 4)`` world-to-camera matrices, Blender camera axes.
            light: the light.

        Returns:
            ``(N, H, W, 4)`` uint8 straight (not premultiplied) RGBA, alpha = covered fraction.
        """
        world_to_cams = np.asarray(world_to_cams, np.float64).reshape(-1, 3, 4)
        dev = self.device
        verts = torch.from_numpy(np.array(mesh.vertices)).to(dev, torch.float64)
        faces = torch.from_numpy(mesh.faces.astype(np.int64)).to(dev)
        attrs = _VertexAttributes(mesh, dev)
        out = np.empty((len(world_to_cams), self.image_size, self.image_size, 4), np.uint8)
        for i, m in enumerate(world_to_cams):
            out[i] = self._render_one(verts, faces, attrs, torch.from_numpy(m).to(dev), light)
        return out

    @torch.no_grad()
    def depth(self, mesh: RenderMesh, world_to_cams: np.ndarray) -> np.ndarray:
        """Depth maps of ``N`` views: ``(N, H, W)`` float32 distance along the camera's viewing axis
        (``-z`` in Blender camera axes) of the nearest surface at each pixel centre, ``inf`` where no
        surface is hit (one sample per pixel, no anti-aliasing)."""
        world_to_cams = np.asarray(world_to_cams, np.float64).reshape(-1, 3, 4)
        dev = self.device
        verts = torch.from_numpy(np.array(mesh.vertices)).to(dev, torch.float64)
        faces = torch.from_numpy(mesh.faces.astype(np.int64)).to(dev)
        out = np.empty((len(world_to_cams), self.image_size, self.image_size), np.float32)
        for i, m in enumerate(world_to_cams):
            zbuf = self._rasterize(verts, faces, torch.from_numpy(m).to(dev), self.image_size)[0]
            empty = zbuf == torch.iinfo(torch.int64).max
            d = (zbuf >> _FACE_BITS).double() / _DEPTH_SCALE
            out[i] = torch.where(empty, torch.full_like(d, float("inf")), d).reshape(self.image_size, self.image_size).cpu().numpy()
        return out

    # ------------------------------------------------------------------ internals
    def _rasterize(self, verts, faces, world_to_cam, size: int):
        """Steps 1-2 at ``size`` x ``size`` samples: ``(zbuf (size * size,) packed depth|face, fx, fy, fd)``."""
        focal = focal_length_px(self.fov_deg, size)
        rot, trans = world_to_cam[:, :3], world_to_cam[:, 3]
        cam = verts @ rot.T + trans
        depth = -cam[:, 2]
        safe = depth.clamp_min(1e-6)
        sx = size / 2 + focal * cam[:, 0] / safe
        sy = size / 2 - focal * cam[:, 1] / safe

        # 1. faces in front of the camera, with a non-empty pixel box
        fd = depth[faces]
        keep = (fd > 1e-3).all(1)
        fx, fy = sx[faces], sy[faces]
        x0 = torch.floor(fx.min(1).values - 0.5).clamp(0, size - 1).long()
        x1 = torch.ceil(fx.max(1).values - 0.5).clamp(0, size - 1).long()
        y0 = torch.floor(fy.min(1).values - 0.5).clamp(0, size - 1).long()
        y1 = torch.ceil(fy.max(1).values - 0.5).clamp(0, size - 1).long()
        keep &= (fx.max(1).values >= 0) & (fx.min(1).values <= size) & (fy.max(1).values >= 0) & (fy.min(1).values <= size)
        face_ids = torch.nonzero(keep).squeeze(1)
        zbuf = torch.full((size * size,), torch.iinfo(torch.int64).max, dtype=torch.int64, device=verts.device)

        # 2. bucket by box side (power of two) and rasterize each bucket in chunks
        side = torch.maximum(x1 - x0, y1 - y0)[face_ids] + 1
        bucket = torch.ceil(torch.log2(side.double())).long().clamp_min(0)
        for b in torch.unique(bucket).tolist():
            ids = face_ids[bucket == b]
            n = 1 << b
            chunk = max(1, self.max_candidates // (n * n))
            oy, ox = torch.meshgrid(torch.arange(n, device=verts.device), torch.arange(n, device=verts.device), indexing="ij")
            ox, oy = ox.reshape(1, -1), oy.reshape(1, -1)
            for s in range(0, len(ids), chunk):
                f = ids[s:s + chunk]
                px = x0[f, None] + ox
                py = y0[f, None] + oy
                inside = (px <= x1[f, None]) & (py <= y1[f, None])
                w0, w1, w2 = _barycentric(fx[f], fy[f], px.double() + 0.5, py.double() + 0.5)
                inside &= (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
                d = 1.0 / (w0 / fd[f, 0:1] + w1 / fd[f, 1:2] + w2 / fd[f, 2:3])
                key = (d * _DEPTH_SCALE).long().clamp(0, 2**31 - 1) << _FACE_BITS | f[:, None]
                pix = py * size + px
                zbuf.scatter_reduce_(0, pix[inside], key[inside], reduce="amin")
        return zbuf, fx, fy, fd

    def _render_one(self, verts, faces, attrs, world_to_cam, light: Light) -> np.ndarray:
        ss = self.supersample
        size = self.image_size * ss
        rot, trans = world_to_cam[:, :3], world_to_cam[:, 3]
        zbuf, fx, fy, fd = self._rasterize(verts, faces, world_to_cam, size)

        # 3. shade covered samples
        covered = zbuf != torch.iinfo(torch.int64).max
        pix = torch.nonzero(covered).squeeze(1)
        fid = zbuf[pix] & ((1 << _FACE_BITS) - 1)
        px = (pix % size).double() + 0.5
        py = (pix // size).double() + 0.5
        w0, w1, w2 = _barycentric(fx[fid], fy[fid], px[:, None], py[:, None])
        w = torch.cat([w0, w1, w2], 1) / fd[fid]
        w = w / w.sum(1, keepdim=True)
        cam_center = -rot.T @ trans
        tri = faces[fid]
        world_pos = (w[..., None] * verts[tri]).sum(1)
        rgb = attrs.shade(tri, w, world_pos, cam_center, light)

        # 4. premultiplied average over supersample blocks, then un-premultiply
        img = torch.zeros((size * size, 4), dtype=torch.float64, device=verts.device)
        img[pix, :3] = rgb
        img[pix, 3] = 1.0
        img = img.reshape(self.image_size, ss, self.image_size, ss, 4).mean((1, 3))
        alpha = img[..., 3:4]
        color = torch.where(alpha > 0, img[..., :3] / alpha.clamp_min(1e-12), torch.zeros_like(img[..., :3]))
        out = torch.cat([color, alpha], -1)
        return (out * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).cpu().numpy()


def _barycentric(fx, fy, px, py):
    """Screen-space barycentric weights of points ``(px, py)`` in triangles ``(fx, fy)`` (any winding)."""
    ax, bx, cx = fx[:, 0:1], fx[:, 1:2], fx[:, 2:3]
    ay, by, cy = fy[:, 0:1], fy[:, 1:2], fy[:, 2:3]
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    area = torch.where(area.abs() < 1e-12, torch.full_like(area, float("inf")), area)
    w0 = ((bx - px) * (cy - py) - (by - py) * (cx - px)) / area
    w1 = ((cx - px) * (ay - py) - (cy - py) * (ax - px)) / area
    w2 = 1.0 - w0 - w1
    w2 = torch.where(torch.isinf(area), torch.full_like(w2, -1.0), w2)
    return w0, w1, w2


class _VertexAttributes:
    def __init__(self, mesh: RenderMesh, dev):
        self.normals = torch.from_numpy(np.array(mesh.normals)).to(dev, torch.float64)
        self.colors = torch.from_numpy(np.array(mesh.colors)).to(dev, torch.float64)
        self.uvs = torch.from_numpy(np.array(mesh.uvs)).to(dev, torch.float64)
        self.tex_index = torch.from_numpy(mesh.texture_index.astype(np.int64)).to(dev)
        self.textures = torch.from_numpy(np.array(mesh.textures)).to(dev, torch.float64) / 255.0

    def shade(self, tri, w, world_pos, cam_center, light: Light):
        n = (w[..., None] * self.normals[tri]).sum(1)
        n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-12)
        to_cam = cam_center[None] - world_pos
        n = torch.where(((n * to_cam).sum(1, keepdim=True) < 0), -n, n)  # two-sided
        l_dir = torch.tensor(light.direction, dtype=torch.float64, device=n.device)
        l_dir = l_dir / l_dir.norm().clamp_min(1e-12)
        lambert = (n @ l_dir).clamp_min(0.0)
        albedo = (w[..., None] * self.colors[tri]).sum(1)
        layer = self.tex_index[tri[:, 0]]
        textured = layer >= 0
        if textured.any():
            uv = (w[..., None] * self.uvs[tri]).sum(1)[textured]
            albedo[textured] = albedo[textured] * _sample_bilinear_repeat(self.textures, layer[textured], uv)
        return albedo * (light.ambient + light.intensity * lambert)[:, None]


def _sample_bilinear_repeat(textures, layer, uv):
    """Bilinear texture lookup with wrap-around (GL_REPEAT, GL_LINEAR), ``uv`` origin at the bottom-left."""
    s = textures.shape[1]
    u = uv[:, 0] - torch.floor(uv[:, 0])
    v = uv[:, 1] - torch.floor(uv[:, 1])
    x = u * s - 0.5
    y = (1.0 - v) * s - 0.5  # row 0 is the top of the image
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1) % s, (y0 + 1) % s
    x0, y0 = x0 % s, y0 % s
    # GL flips rows on upload, so GL's t wraps the same way: sample rows (1 - v)
    t = textures
    return ((1 - fx) * (1 - fy) * t[layer, y0, x0] + fx * (1 - fy) * t[layer, y0, x1]
            + (1 - fx) * fy * t[layer, y1, x0] + fx * fy * t[layer, y1, x1])
