"""Seeded procedural objects of two kinds (:data:`KINDS`), selected by ``ProceduralConfig.kind``.

``"primitives"`` (the original kind, issue 4, item 1a): multi-part, asymmetric, coloured and
textured random assemblies. ``"objects"`` (:func:`object_like`): upright, object-like shapes whose
unseen sides are largely predictable from one view, the way most real products are (see that
function).

A ``"primitives"`` object is a body (box, sphere, cylinder, cone, torus, capsule or extrusion) with 2 to ~8 more
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
#: The procedural kinds: random primitive assemblies, or upright object-like shapes.
KINDS = ("primitives", "objects")
#: The categories of the ``"objects"`` kind (:func:`object_like`).
OBJECT_CATEGORIES = ("vase", "bottle", "cup", "bowl", "lamp", "mug", "books", "crate", "cabinet", "table", "chair")
#: The materials of the ``"objects"`` kind: plain colour, bands/stripes, a two-colour pattern.
MATERIALS = ("plain", "striped", "textured")


@dataclass(frozen=True)
class ProceduralConfig:
    """Complexity knobs of :func:`procedural_object`.

    Attributes:
        min_parts / max_parts: number of parts including the body (inclusive range).
        segments: tessellation of round primitives (around the axis).
        texture_probability: chance that a part gets a procedural texture (else plain colour).
        texture_size: side of every texture layer in pixels.
        primitives: the primitive kinds to draw from.
        kind: ``"primitives"`` (random assemblies, the knobs above) or ``"objects"``
            (:func:`object_like`; it uses ``segments``, ``texture_probability`` (chance of a
            non-plain material), ``texture_size`` and ``categories``, not the part counts).
        categories: the ``"objects"`` categories to draw from (:data:`OBJECT_CATEGORIES`).
    """

    min_parts: int = 3
    max_parts: int = 7
    segments: int = 24
    texture_probability: float = 0.5
    texture_size: int = 64
    primitives: tuple[str, ...] = PRIMITIVES
    kind: str = "primitives"
    categories: tuple[str, ...] = OBJECT_CATEGORIES

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
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not self.categories or set(self.categories) - set(OBJECT_CATEGORIES):
            raise ValueError(f"categories must be a non-empty subset of {OBJECT_CATEGORIES}, got {self.categories}")


def procedural_object(seed: int, config: ProceduralConfig = ProceduralConfig()) -> RenderMesh:
    """A random object of ``config.kind``; the same ``seed`` and ``config`` always give the same mesh."""
    if config.kind == "objects":
        return object_like(seed, config)
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


# ---------------------------------------------------------------------- object-like kind
def object_like(seed: int, config: ProceduralConfig = ProceduralConfig(kind="objects")) -> RenderMesh:
    """An upright object-like mesh (world +Z up, resting on its base, turned by a random yaw).

    Categories (:data:`OBJECT_CATEGORIES`), each with random proportions:

    * surfaces of revolution: vase (bulging body, neck, lip), bottle (body, shoulder, neck, cap),
      cup and bowl (walled, open on top: the inside shows), lamp (base, pole, open shade);
    * boxes and extrusions: books (a stack of 1-4, cover and page block), crate (box with slats),
      cabinet (body, drawer fronts and knobs on one side);
    * assemblies: mug (walled cup with a handle), table (top and four legs, or a round top on a
      pedestal), chair (seat, four legs, backrest).

    Materials (:data:`MATERIALS`) per part: plain colour, or with probability
    ``config.texture_probability`` horizontal bands / stripes or a two-colour pattern
    (:func:`procedural_texture`). Colours stay away from white so silhouettes read on a white
    background. Normalised like every procedural object (largest bounding-box side 1, centred).

    >>> m = object_like(5)
    >>> bool(np.isclose(np.ptp(m.vertices, 0).max(), 1.0, atol=1e-5))
    True
    """
    rng = np.random.default_rng([int(seed), 0x0B1EC7])
    category = str(rng.choice(config.categories))
    parts = _CATEGORY_BUILDERS[category](rng, config)
    yaw = rng.uniform(0, 2 * math.pi)
    c, s_ = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, -s_, 0.0], [s_, c, 0.0], [0.0, 0.0, 1.0]])
    return concatenate([_transform(p, rot, np.zeros(3)) for p in parts]).normalized()


def object_category(seed: int, config: ProceduralConfig = ProceduralConfig(kind="objects")) -> str:
    """The category :func:`object_like` draws for ``seed`` (its first random draw)."""
    return str(np.random.default_rng([int(seed), 0x0B1EC7]).choice(config.categories))


def _palette_color(rng: np.random.Generator, hue: float | None = None) -> np.ndarray:
    """A colour well away from white (its largest distance from white is at least 0.3)."""
    hue = rng.random() if hue is None else hue % 1.0
    if rng.random() < 0.15:  # neutrals: greys, browns, near-black
        return np.array(colorsys.hsv_to_rgb(rng.uniform(0.05, 0.12), rng.uniform(0.0, 0.5), rng.uniform(0.15, 0.6)))
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.35, 0.9), rng.uniform(0.4, 0.92)))


def _bands_texture(color_a, color_b, size: int, rng: np.random.Generator) -> np.ndarray:
    """``(size, size, 3)`` uint8 horizontal bands (along the texture's v: rings on a lathe, stripes on a box)."""
    yy = np.mgrid[0:size, 0:size][0] / size
    freq = int(rng.integers(2, 8))
    width = rng.uniform(0.25, 0.6)
    mask = ((yy * freq) % 1.0 < width).astype(np.float64)
    a, b = np.asarray(color_a, np.float64), np.asarray(color_b, np.float64)
    img = a[None, None] * (1 - mask[..., None]) + b[None, None] * mask[..., None]
    return (img * 255 + 0.5).clip(0, 255).astype(np.uint8)


def _paint(part: RenderMesh, rng: np.random.Generator, config: ProceduralConfig, color=None,
           material: str | None = None) -> RenderMesh:
    """Give ``part`` a material: plain ``color``, or (with ``config.texture_probability``) bands or a pattern."""
    color = _palette_color(rng) if color is None else np.asarray(color, np.float64)
    if material is None:
        material = "plain" if rng.random() >= config.texture_probability else str(rng.choice(MATERIALS[1:]))
    if material == "plain":
        return _colored(part, color)
    other = _palette_color(rng, hue=colorsys.rgb_to_hsv(*color)[0] + rng.uniform(0.25, 0.75))
    n = config.texture_size
    tex = (_bands_texture(color, other, n, rng) if material == "striped"
           else procedural_texture(str(rng.choice(("checker", "dots", "gradient", "stripes"))), color, other, n, rng))
    part.colors[:] = 1.0
    part.texture_index[:] = 0
    part.textures = tex[None]
    return part


def _cuboid(size, center) -> RenderMesh:
    """Axis-aligned box of side lengths ``size`` centred at ``center``."""
    return _transform(_box(), np.diag(np.asarray(size, np.float64)), np.asarray(center, np.float64))


def _rod(radius: float, z0: float, z1: float, segments: int, x: float = 0.0, y: float = 0.0) -> RenderMesh:
    """Closed vertical cylinder from ``z0`` to ``z1`` with its axis at ``(x, y)``."""
    prof = [(0, z0), (radius, z0), (radius, z0), (radius, z1), (radius, z1), (0, z1)]
    return _transform(_lathe(prof, segments), np.eye(3), np.array([x, y, 0.0]))


def _walled(outer: list[tuple[float, float]], thickness: float) -> list[tuple[float, float]]:
    """Profile of an open-topped vessel: the ``outer`` (radius, z) curve from the base edge up to
    the rim, the rim, then the same curve ``thickness`` inside back down to an inner floor."""
    base_z = outer[0][1]
    inner = [(max(r - thickness, 0.01), z) for r, z in reversed(outer) if z >= base_z + thickness]
    return [(0.0, base_z), *outer, *inner, (0.0, base_z + thickness)]


def _smooth_profile(radii, z0: float, z1: float, n: int = 12) -> list[tuple[float, float]]:
    """(radius, z) points of a smooth curve through control ``radii`` spread evenly from z0 to z1."""
    ctrl_z = np.linspace(z0, z1, len(radii))
    zs = np.linspace(z0, z1, n)
    rs = np.interp(zs, ctrl_z, radii)
    rs = np.convolve(np.pad(rs, 1, mode="edge"), np.ones(3) / 3, mode="valid")  # soften the corners
    return [(float(r), float(z)) for r, z in zip(rs, zs)]


def _vase(rng, config):
    h = rng.uniform(0.9, 1.4)
    rb, rm, rn, rl = rng.uniform(0.15, 0.25), rng.uniform(0.25, 0.45), rng.uniform(0.08, 0.18), rng.uniform(0.12, 0.25)
    outer = _smooth_profile([rb, rm, rm * rng.uniform(0.7, 1.0), rn, rn, rl], 0.0, h)
    return [_paint(_lathe(_walled(outer, 0.03), config.segments), rng, config)]


def _bottle(rng, config):
    r = rng.uniform(0.15, 0.3)
    h_body, h_neck = rng.uniform(0.5, 0.9), rng.uniform(0.15, 0.35)
    rn = rng.uniform(0.05, 0.1)
    prof = [(0, 0), (r, 0), (r, 0), (r, h_body), (r * 0.8, h_body + 0.06), (rn, h_body + 0.15),
            (rn, h_body + 0.15 + h_neck), (0, h_body + 0.15 + h_neck)]
    body = _paint(_lathe(prof, config.segments), rng, config)
    cap_top = h_body + 0.15 + h_neck + rng.uniform(0.04, 0.1)
    cap = _colored(_rod(rn * 1.15, h_body + 0.15 + h_neck - 0.02, cap_top, config.segments), _palette_color(rng))
    return [body, cap]


def _cup(rng, config):
    h, r0 = rng.uniform(0.4, 0.8), rng.uniform(0.15, 0.25)
    r1 = r0 * rng.uniform(1.0, 1.4)
    outer = [(r0, 0.0), (r0, 0.0), (r1, h)]
    return [_paint(_lathe(_walled(outer, 0.03), config.segments), rng, config)]


def _bowl(rng, config):
    rt, h = rng.uniform(0.4, 0.6), rng.uniform(0.2, 0.35)
    rf = rt * rng.uniform(0.3, 0.5)
    outer = [(rf, 0.0), (rf, 0.0)] + [(rf + (rt - rf) * math.sin(0.5 * math.pi * k / 6), h * k / 6) for k in range(1, 7)]
    return [_paint(_lathe(_walled(outer, 0.03), config.segments), rng, config)]


def _lamp(rng, config):
    seg = config.segments
    rb, pole_h = rng.uniform(0.15, 0.3), rng.uniform(0.4, 0.9)
    metal = _palette_color(rng)
    base = _colored(_rod(rb, 0.0, 0.05, seg), metal)
    pole = _colored(_rod(0.025, 0.05, pole_h, seg), metal)
    rlo, rhi, hs = rng.uniform(0.25, 0.4), rng.uniform(0.1, 0.25), rng.uniform(0.25, 0.4)
    shade_prof = [(rlo, pole_h - 0.1), (rhi, pole_h - 0.1 + hs), (rhi - 0.015, pole_h - 0.1 + hs), (rlo - 0.015, pole_h - 0.1)]
    shade = _paint(_lathe(shade_prof, seg), rng, config)
    return [base, pole, shade]


def _mug(rng, config):
    h, r = rng.uniform(0.45, 0.7), rng.uniform(0.18, 0.28)
    color = _palette_color(rng)
    body = _paint(_lathe(_walled([(r, 0.0), (r, 0.0), (r, h)], 0.035), config.segments), rng, config, color)
    a, thick = h * rng.uniform(0.25, 0.35), rng.uniform(0.025, 0.045)
    ring = _torus(1.0, thick / a, config.segments, 8)  # ring radius 1 in the XY plane
    to_xz = np.array([[a, 0, 0], [0, 0, -a], [0, a, 0]])  # into the XZ plane, radius a
    handle = _colored(_transform(ring, to_xz, np.array([r + 0.6 * a, 0.0, h / 2])), color)
    return [body, handle]


def _books(rng, config):
    parts, z = [], 0.0
    for _ in range(int(rng.integers(1, 5))):
        w, d, t = rng.uniform(0.5, 0.9), rng.uniform(0.35, 0.6), rng.uniform(0.06, 0.16)
        yaw = rng.uniform(-0.3, 0.3)
        c, s_ = math.cos(yaw), math.sin(yaw)
        rot = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1.0]])
        shift = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), z])
        cover = _paint(_cuboid((w, d, t), (0, 0, t / 2)), rng, config)
        pages = _colored(_cuboid((w * 0.96, d * 1.01, t * 0.8), (0.01 * w, 0, t / 2)), (0.92, 0.89, 0.8))
        parts += [_transform(cover, rot, shift), _transform(pages, rot, shift)]
        z += t
    return parts


def _crate(rng, config):
    w, d, h = rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0), rng.uniform(0.4, 0.9)
    wood = _palette_color(rng, hue=rng.uniform(0.05, 0.12))
    parts = [_paint(_cuboid((w, d, h), (0, 0, h / 2)), rng, config, wood)]
    dark = wood * 0.6
    n = int(rng.integers(2, 4))
    for k in range(n):  # horizontal slats around the four sides
        z = h * (k + 0.5) / n
        parts.append(_colored(_cuboid((w + 0.03, d + 0.03, 0.05), (0, 0, z)), dark))
    return parts


def _cabinet(rng, config):
    w, d, h = rng.uniform(0.5, 0.9), rng.uniform(0.35, 0.6), rng.uniform(0.7, 1.4)
    body_color = _palette_color(rng)
    parts = [_paint(_cuboid((w, d, h), (0, 0, h / 2)), rng, config, body_color)]
    n = int(rng.integers(2, 5))
    front = _palette_color(rng, hue=colorsys.rgb_to_hsv(*body_color)[0] + 0.5)
    knob = _palette_color(rng)
    gap, dh = 0.03, (h - 0.1) / n
    for k in range(n):  # drawer fronts and knobs on the +X side
        zc = 0.05 + dh * (k + 0.5)
        parts.append(_colored(_cuboid((0.02, d - 2 * gap, dh - gap), (w / 2 + 0.01, 0, zc)), front))
        parts.append(_colored(_cuboid((0.04, 0.06, 0.04), (w / 2 + 0.04, 0, zc)), knob))
    return parts


def _table(rng, config):
    seg = config.segments
    h = rng.uniform(0.5, 0.9)
    top_color, leg_color = _palette_color(rng), _palette_color(rng)
    if rng.random() < 0.35:  # round pedestal table
        rt = rng.uniform(0.4, 0.6)
        return [_paint(_rod(rt, h - 0.05, h, seg), rng, config, top_color),
                _colored(_rod(0.05, 0.04, h - 0.05, seg), leg_color),
                _colored(_rod(rt * 0.5, 0.0, 0.04, seg), leg_color)]
    w, d, t = rng.uniform(0.7, 1.2), rng.uniform(0.4, 0.8), 0.05
    parts = [_paint(_cuboid((w, d, t), (0, 0, h - t / 2)), rng, config, top_color)]
    lx, ly, lr = w / 2 - 0.06, d / 2 - 0.06, rng.uniform(0.025, 0.045)
    round_legs = rng.random() < 0.5
    for sx in (-1, 1):
        for sy in (-1, 1):
            leg = (_rod(lr, 0.0, h - t, seg, sx * lx, sy * ly) if round_legs
                   else _cuboid((2 * lr, 2 * lr, h - t), (sx * lx, sy * ly, (h - t) / 2)))
            parts.append(_colored(leg, leg_color))
    return parts


def _chair(rng, config):
    w, d, hs = rng.uniform(0.4, 0.55), rng.uniform(0.4, 0.55), rng.uniform(0.4, 0.5)
    hb, t, lr = rng.uniform(0.35, 0.55), 0.05, rng.uniform(0.02, 0.035)
    seat_color, leg_color = _palette_color(rng), _palette_color(rng)
    parts = [_paint(_cuboid((w, d, t), (0, 0, hs - t / 2)), rng, config, seat_color)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(_colored(_cuboid((2 * lr, 2 * lr, hs - t), (sx * (w / 2 - lr), sy * (d / 2 - lr), (hs - t) / 2)), leg_color))
    parts.append(_paint(_cuboid((0.04, d, hb), (-w / 2 + 0.02, 0, hs + hb / 2)), rng, config, seat_color))  # backrest at -X
    return parts


_CATEGORY_BUILDERS = {
    "vase": _vase, "bottle": _bottle, "cup": _cup, "bowl": _bowl, "lamp": _lamp, "mug": _mug,
    "books": _books, "crate": _crate, "cabinet": _cabinet, "table": _table, "chair": _chair,
}


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
