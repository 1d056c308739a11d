"""Seeded procedural objects: multi-part, asymmetric, coloured and textured (issue 4, item 1a).

An object is a body (box, sphere, cylinder, cone, torus, capsule or extrusion) with 2 to ~8 more
parts attached at random points of its surface, each with its own colour (hues spread by the golden
ratio so parts look distinct) and, with some probability, a simple procedural texture (checker,
stripes, dots, gradient). Random placement makes front, back, left, right, top and bottom look
different. The result is normalised (docs/conventions.md, Cameras: largest bounding-box side 1, centred).

>>> m = procedural_object(seed=3)
>>> float(abs(m.vertices.max(0) - m.vertices.min(0)).max())  # doctest: +ELLIPSIS
1.0...
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from ..render.mesh import RenderMesh, concatenate, vertex_normals

PRIMITIVES = ("box", "sphere", "cylinder", "cone", "torus", "capsule", "extrusion")
TEXTURES = ("checker", "stripes", "dots", "gradient")


@dataclass(frozen=True)
class ProceduralConfig:
    """Complexity knobs of :func:`procedural_object`.

    Attributes:
        min_parts / max_parts: number of parts including the body (inclusive range).
        segments: tessellation of round primitives (around the axis).
        texture_probability: chance that a part gets a procedural texture (else plain colour).
        texture_size: side of every texture layer in pixels.
        primitives: the primitive kinds to draw from.
    """

    min_parts: int = 3
    max_parts: int = 7
    segments: int = 24
    texture_probability: float = 0.5
    texture_size: int = 64
    primitives: tuple[str, ...] = PRIMITIVES

    def __post_init__(self):
        if not 1 <= self.min_parts <= self.max_parts:
            raise ValueError(f"need 1 <= min_parts <= max_parts, got min_parts={self.min_parts}, max_parts={self.max_parts}")
        if self.segments < 3:
            raise ValueError(f"segments must be >= 3, got {self.segments}")
        if not 0.0 <= self.texture_probability <= 1.0:
            raise ValueError(f"texture_probability must be in [0, 1], got {self.texture_probability}")
        unknown = set(self.primitives) - set(PRIMITIVES)
        if unknown or not self.primitives:
            raise ValueError(f"primitives must be a non-empty subset of {PRIMITIVES}, got {self.primitives}")


def procedural_object(seed: int, config: ProceduralConfig = ProceduralConfig()) -> RenderMesh:
    """A random multi-part object; the same ``seed`` and ``config`` always give the same mesh."""
    rng = np.random.default_rng(seed)
    n_parts = int(rng.integers(config.min_parts, config.max_parts + 1))
    hue0 = rng.random()
    parts = []
    for i in range(n_parts):
        kind = str(rng.choice(config.primitives))
        part = _primitive(kind, rng, config.segments)
        size = 1.0 if i == 0 else rng.uniform(0.25, 0.6)
        part_scale = size * rng.uniform(0.6, 1.4, size=3) if kind in ("box", "extrusion") else np.full(3, size)
        rot = _random_rotation(rng)
        if i == 0:
            offset = np.zeros(3)
        else:  # stick the part onto the body's surface in a random direction
            d = rng.normal(size=3)
            d /= np.linalg.norm(d)
            offset = d * rng.uniform(0.3, 0.5)
        part = _transform(part, rot * part_scale[None, :], offset)
        hue = (hue0 + 0.618034 * i) % 1.0
        color = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.55, 0.95), rng.uniform(0.65, 1.0)), np.float32)
        if rng.random() < config.texture_probability:
            other = np.array(colorsys.hsv_to_rgb((hue + 0.5) % 1.0, rng.uniform(0.2, 0.9), rng.uniform(0.5, 1.0)))
            tex = procedural_texture(str(rng.choice(TEXTURES)), color, other, config.texture_size, rng)
            part.colors[:] = 1.0
            part.texture_index[:] = 0
            part.textures = tex[None]
        else:
            part.colors[:] = color
            part.textures = np.full((1, config.texture_size, config.texture_size, 3), 255, np.uint8)
        parts.append(part)
    return concatenate(parts).normalized()


def marker_cube(body_color=(0.55, 0.55, 0.55)) -> RenderMesh:
    """A grey cube (side 1) with a coloured plate on each side, for convention tests.

    +X red, -X green, +Y blue, -Y yellow, +Z (top) magenta, -Z (bottom) cyan.
    """
    parts = [_colored(_box(), body_color)]
    for axis, sign, color in MARKERS:
        size = np.full(3, 0.7)
        size[axis] = 0.04
        center = np.zeros(3)
        center[axis] = sign * 0.51
        parts.append(_colored(_transform(_box(), np.diag(size), center), color))
    return concatenate(parts).normalized()


#: (axis, sign, colour) of the plates on :func:`marker_cube`.
MARKERS: tuple[tuple[int, int, tuple[float, float, float]], ...] = (
    (0, +1, (1.0, 0.0, 0.0)),
    (0, -1, (0.0, 1.0, 0.0)),
    (1, +1, (0.0, 0.0, 1.0)),
    (1, -1, (1.0, 1.0, 0.0)),
    (2, +1, (1.0, 0.0, 1.0)),
    (2, -1, (0.0, 1.0, 1.0)),
)


# ---------------------------------------------------------------------- textures
def procedural_texture(kind: str, color_a, color_b, size: int, rng: np.random.Generator) -> np.ndarray:
    """``(size, size, 3)`` uint8 two-colour pattern: checker, stripes, dots or gradient."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    freq = int(rng.integers(2, 7))
    if kind == "checker":
        mask = ((np.floor(xx * freq) + np.floor(yy * freq)) % 2).astype(np.float64)
    elif kind == "stripes":
        angle = rng.uniform(0, math.pi)
        mask = (np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi * freq) > 0).astype(np.float64)
    elif kind == "dots":
        fx, fy = (xx * freq) % 1 - 0.5, (yy * freq) % 1 - 0.5
        mask = (fx**2 + fy**2 < 0.09).astype(np.float64)
    elif kind == "gradient":
        mask = 0.5 + 0.5 * np.sin(2 * math.pi * (xx + 0.5 * yy))
    else:
        raise ValueError(f"texture kind must be one of {TEXTURES}, got {kind!r}")
    a, b = np.asarray(color_a, np.float64), np.asarray(color_b, np.float64)
    img = a[None, None] * (1 - mask[..., None]) + b[None, None] * mask[..., None]
    return (img * 255 + 0.5).clip(0, 255).astype(np.uint8)


# ---------------------------------------------------------------------- primitives
def _primitive(kind: str, rng: np.random.Generator, segments: int) -> RenderMesh:
    if kind == "box":
        return _box()
    if kind == "sphere":
        rings = max(segments // 2, 3)
        prof = [(0.5 * math.sin(math.pi * i / rings), -0.5 * math.cos(math.pi * i / rings)) for i in range(rings + 1)]
        return _lathe(prof, segments)
    if kind == "cylinder":
        r = rng.uniform(0.25, 0.5)
        return _lathe([(0, -0.5), (r, -0.5), (r, -0.5), (r, 0.5), (r, 0.5), (0, 0.5)], segments)
    if kind == "cone":
        r = rng.uniform(0.3, 0.5)
        return _lathe([(0, -0.5), (r, -0.5), (r, -0.5), (0, 0.5)], segments)
    if kind == "capsule":
        r, h = 0.25, 0.25
        q = max(segments // 4, 2)
        bottom = [(r * math.sin(math.pi / 2 * i / q), -h - r * math.cos(math.pi / 2 * i / q)) for i in range(q + 1)]
        top = [(r * math.cos(math.pi / 2 * i / q), h + r * math.sin(math.pi / 2 * i / q)) for i in range(q + 1)]
        return _lathe(bottom + top, segments)
    if kind == "torus":
        return _torus(0.35, rng.uniform(0.08, 0.15), segments, max(segments // 2, 6))
    if kind == "extrusion":
        n = int(rng.integers(3, 9))
        radii = rng.uniform(0.25, 0.5, size=n) if rng.random() < 0.5 else np.tile([0.5, 0.22], n)[: 2 * n]
        return _extrude(radii, rng.uniform(0.15, 0.6))
    raise ValueError(f"primitive kind must be one of {PRIMITIVES}, got {kind!r}")


def _box() -> RenderMesh:
    """Unit cube centred at the origin with per-side vertices (flat normals) and 0..1 UVs per side."""
    verts, normals, uvs, faces = [], [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            n = np.zeros(3)
            n[axis] = sign
            u_ax, v_ax = [a for a in range(3) if a != axis]
            base = len(verts)
            for u, v in ((0, 0), (1, 0), (1, 1), (0, 1)):
                p = np.zeros(3)
                p[axis] = 0.5 * sign
                p[u_ax] = u - 0.5
                p[v_ax] = v - 0.5
                verts.append(p)
                normals.append(n)
                uvs.append((u, v))
            faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    return _part(np.array(verts), np.array(faces), np.array(normals), np.array(uvs))


def _lathe(profile, segments: int) -> RenderMesh:
    """Surface of revolution about +Z of a (radius, z) profile; duplicated profile points make creases."""
    prof = np.asarray(profile, np.float64)
    m = len(prof)
    ang = np.linspace(0, 2 * math.pi, segments + 1)
    verts = np.stack([prof[None, :, 0] * np.cos(ang)[:, None], prof[None, :, 0] * np.sin(ang)[:, None],
                      np.broadcast_to(prof[None, :, 1], (segments + 1, m))], -1).reshape(-1, 3)
    length = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(prof, axis=0), axis=1))])
    uvs = np.stack(np.meshgrid(ang / (2 * math.pi), length / max(length[-1], 1e-9), indexing="ij"), -1).reshape(-1, 2)
    i, j = np.meshgrid(np.arange(segments), np.arange(m - 1), indexing="ij")
    a, b = i * m + j, (i + 1) * m + j
    faces = np.stack([np.stack([a, b, b + 1], -1), np.stack([a, b + 1, a + 1], -1)], 2).reshape(-1, 3)
    tri = verts[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    faces = faces[area > 1e-12]
    normals = _merged_seam_normals(verts, faces, segments, m)
    return _part(verts, faces, normals, uvs)


def _merged_seam_normals(verts, faces, segments, m):
    """Smooth normals, identical on both copies of the UV seam (first and last ring)."""
    n = vertex_normals(verts, faces).astype(np.float64)
    first, last = np.arange(m), segments * m + np.arange(m)
    s = n[first] + n[last]
    s /= np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)
    n[first] = n[last] = s
    return n


def _torus(big: float, small: float, seg_u: int, seg_v: int) -> RenderMesh:
    u = np.linspace(0, 2 * math.pi, seg_u + 1)
    v = np.linspace(0, 2 * math.pi, seg_v + 1)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    ring = big + small * np.cos(vv)
    verts = np.stack([ring * np.cos(uu), ring * np.sin(uu), small * np.sin(vv)], -1).reshape(-1, 3)
    normals = np.stack([np.cos(vv) * np.cos(uu), np.cos(vv) * np.sin(uu), np.sin(vv)], -1).reshape(-1, 3)
    uvs = np.stack([uu / (2 * math.pi), vv / (2 * math.pi)], -1).reshape(-1, 2)
    m = seg_v + 1
    i, j = np.meshgrid(np.arange(seg_u), np.arange(seg_v), indexing="ij")
    a, b = i * m + j, (i + 1) * m + j
    faces = np.stack([np.stack([a, b, b + 1], -1), np.stack([a, b + 1, a + 1], -1)], 2).reshape(-1, 3)
    return _part(verts, faces, normals, uvs)


def _extrude(radii: np.ndarray, height: float) -> RenderMesh:
    """Prism over a star-shaped polygon (vertex k at angle 2 pi k / n, radius radii[k])."""
    n = len(radii)
    ang = 2 * math.pi * np.arange(n) / n
    poly = np.stack([radii * np.cos(ang), radii * np.sin(ang)], -1)
    verts, normals, uvs, faces = [], [], [], []
    for z, sign in ((-height / 2, -1.0), (height / 2, 1.0)):  # caps: fan from the centre
        base = len(verts)
        verts.append((0.0, 0.0, z))
        for p in poly:
            verts.append((p[0], p[1], z))
        normals += [(0, 0, sign)] * (n + 1)
        uvs += [(0.5, 0.5)] + [tuple(0.5 + p) for p in poly]
        faces += [(base, base + 1 + k, base + 1 + (k + 1) % n) for k in range(n)]
    perim = 0.0
    for k in range(n):  # sides: own vertices per quad, flat normals
        p, q = poly[k], poly[(k + 1) % n]
        edge = q - p
        nrm = np.array([edge[1], -edge[0], 0.0])
        nrm /= np.linalg.norm(nrm) + 1e-12
        base = len(verts)
        length = float(np.linalg.norm(edge))
        for (x, y), z, uv in ((p, -height / 2, (perim, 0)), (q, -height / 2, (perim + length, 0)),
                              (q, height / 2, (perim + length, 1)), (p, height / 2, (perim, 1))):
            verts.append((x, y, z))
            normals.append(nrm)
            uvs.append(uv)
        faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
        perim += length
    return _part(np.array(verts), np.array(faces), np.array(normals), np.array(uvs))


def _part(verts, faces, normals, uvs) -> RenderMesh:
    v = len(verts)
    return RenderMesh(verts, faces, normals, np.ones((v, 3)), uvs, np.full(v, -1), np.full((1, 1, 1, 3), 255, np.uint8))


def _colored(part: RenderMesh, color) -> RenderMesh:
    part.colors[:] = np.asarray(color, np.float32)
    part.textures = np.full((1, 64, 64, 3), 255, np.uint8)
    return part


def _transform(part: RenderMesh, linear: np.ndarray, offset: np.ndarray) -> RenderMesh:
    """Apply ``x -> linear @ x + offset``; normals use the inverse transpose."""
    linear = np.asarray(linear, np.float64)
    verts = part.vertices.astype(np.float64) @ linear.T + offset
    nrm = part.normals.astype(np.float64) @ np.linalg.inv(linear)
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    return RenderMesh(verts, part.faces, nrm, part.colors, part.uvs, part.texture_index, part.textures)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
