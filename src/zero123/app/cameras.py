"""The web app's camera helpers: the preset camera changes and the picture of the input and target
cameras (drawn with PIL through :func:`zero123.camera.project_points`, so no plotting library is
needed and the picture updates without running the model).

Frames: the object sits at the world origin, world +Z is up; the input camera is at azimuth 0 (on
+X) and ``input_elevation`` degrees above the equator, :data:`zero123.camera.DEFAULT_INPUT_DISTANCE`
from the origin; the target is the input camera moved by the camera change
(:meth:`zero123.camera.RelativeCamera.apply_to_spherical`), as the model sees it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..camera import DEFAULT_INPUT_DISTANCE, RelativeCamera, project_points, world_to_cam_from_spherical

#: Preset camera changes ``name -> (azimuth, elevation, radius)``: degrees, + azimuth counter-clockwise
#: seen from above (the camera moves to its own right), + elevation = camera up, radius a distance
#: ratio (``docs/conventions.md``, "Cameras"). "random" is drawn by :func:`preset_camera`.
PRESETS: dict[str, tuple[float, float, float]] = {
    "left": (-90.0, 0.0, 1.0),
    "right": (90.0, 0.0, 1.0),
    "behind": (180.0, 0.0, 1.0),
    "above": (0.0, 60.0, 1.0),
    "below": (0.0, -45.0, 1.0),
}
#: Ranges of the camera sliders (and of the "random" preset): the original demo's.
AZIMUTH_RANGE = (-180.0, 180.0)
ELEVATION_RANGE = (-90.0, 90.0)
RADIUS_RANGE = (0.7, 1.5)
#: Where the viewer of the camera picture stands (degrees above the equator, azimuth, distance).
VIEWER = (35.0, -55.0, 6.0)
VIEWER_FOV_DEG = 40.0
INPUT_COLOUR = (40, 110, 220)
TARGET_COLOUR = (230, 110, 20)


def preset_camera(name: str, rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """``(azimuth, elevation, radius)`` of a preset; ``"random"`` draws one uniformly from the slider
    ranges (elevation within +-60 so it stays a plausible view).

    >>> preset_camera("behind")
    (180.0, 0.0, 1.0)
    >>> az, el, r = preset_camera("random", np.random.default_rng(0))
    >>> -180 <= az <= 180 and -60 <= el <= 60 and 0.7 <= r <= 1.5
    True
    """
    if name == "random":
        rng = rng if rng is not None else np.random.default_rng()
        return (round(float(rng.uniform(*AZIMUTH_RANGE)), 1), round(float(rng.uniform(-60.0, 60.0)), 1),
                round(float(rng.uniform(*RADIUS_RANGE)), 2))
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {[*PRESETS, 'random']}, got {name!r}")
    return PRESETS[name]


def camera_world_to_cams(azimuth: float, elevation: float, radius: float,
                         input_elevation: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(input, target)`` 3x4 world-to-camera matrices (Blender camera axes) of the input camera and
    of the target after the camera change ``(azimuth, elevation, radius)``. A target past a pole is
    kept just short of it (the picture only)."""
    polar0 = math.radians(90.0 - input_elevation)
    cam = RelativeCamera.from_degrees(azimuth=azimuth, elevation=elevation, radius=radius)
    polar, az, dist = cam.apply_to_spherical(polar0, 0.0, DEFAULT_INPUT_DISTANCE)
    eps = 1e-3
    if polar < 0 or polar > math.pi:  # over a pole: the same point reached from the other side
        polar, az = (-polar, az + math.pi) if polar < 0 else (2 * math.pi - polar, az + math.pi)
    polar = min(max(polar, eps), math.pi - eps)
    return (world_to_cam_from_spherical(polar0, 0.0, DEFAULT_INPUT_DISTANCE),
            world_to_cam_from_spherical(polar, az, max(dist, 0.05)))


def _frustum(world_to_cam: np.ndarray, depth: float = 0.45, half: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Apex (camera centre) ``(3,)`` and the four base corners ``(4, 3)`` of a small pyramid showing
    a camera looking along its -Z axis."""
    rot, t = world_to_cam[:, :3], world_to_cam[:, 3]
    centre = -rot.T @ t
    right, up, back = rot[0], rot[1], rot[2]
    base = centre - depth * back
    corners = np.stack([base + sx * half * right + sy * half * up for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    return centre, corners


def _circle(normal_axis: int, radius: float, n: int = 72) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n + 1)
    pts = np.zeros((n + 1, 3))
    others = [i for i in range(3) if i != normal_axis]
    pts[:, others[0]], pts[:, others[1]] = radius * np.cos(a), radius * np.sin(a)
    return pts


def camera_plot(azimuth: float, elevation: float, radius: float, input_elevation: float = 0.0, *,
                size: int = 320, caption: str | None = None) -> Image.Image:
    """A ``size`` x ``size`` RGB picture of the object (a box at the origin), the sphere the input
    camera lies on, the input camera (blue) and the target camera (orange) of the camera change.

    >>> a, b = camera_plot(0, 0, 1), camera_plot(90, 30, 1.2)
    >>> a.size, bool((np.asarray(a) != np.asarray(b)).any())
    ((320, 320), True)
    """
    w2c_in, w2c_target = camera_world_to_cams(azimuth, elevation, radius, input_elevation)
    v_el, v_az, v_dist = VIEWER
    viewer = world_to_cam_from_spherical(math.radians(90.0 - v_el), math.radians(v_az), v_dist)
    scale = 2  # draw large, shrink once: smooth lines without an antialiasing library
    canvas = Image.new("RGB", (size * scale, size * scale), "white")
    draw = ImageDraw.Draw(canvas)

    def px(points: np.ndarray) -> list[tuple[float, float]]:
        xy, _ = project_points(np.asarray(points, np.float64), viewer, VIEWER_FOV_DEG, size * scale)
        return [tuple(p) for p in xy.numpy().tolist()]

    def polyline(points: np.ndarray, colour, width: int) -> None:
        draw.line(px(points), fill=colour, width=width * scale, joint="curve")

    # 1. The sphere of input distance (equator and two meridians) and the ground axes
    for axis, colour in ((2, (170, 170, 170)), (0, (220, 220, 220)), (1, (220, 220, 220))):
        polyline(_circle(axis, DEFAULT_INPUT_DISTANCE), colour, 1)
    for end, colour in (((1.2, 0, 0), (200, 60, 60)), ((0, 1.2, 0), (60, 160, 60)), ((0, 0, 1.2), (60, 60, 200))):
        polyline(np.array([(0, 0, 0), end]), colour, 1)

    # 2. The object: a box at the origin
    h = 0.3
    box = np.array([(x, y, z) for x in (-h, h) for y in (-h, h) for z in (-h, h)])
    for i in range(8):
        for j in range(i + 1, 8):
            if np.sum(box[i] != box[j]) == 1:
                polyline(box[[i, j]], (90, 90, 90), 2)

    # 3. The cameras: a pyramid each, a line of sight to the object, a label
    for w2c, colour, label in ((w2c_in, INPUT_COLOUR, "input"), (w2c_target, TARGET_COLOUR, "target")):
        apex, corners = _frustum(w2c)
        polyline(np.stack([apex, np.zeros(3)]), tuple(int(c * 0.5 + 127) for c in colour), 1)
        for c in corners:
            polyline(np.stack([apex, c]), colour, 2)
        polyline(np.concatenate([corners, corners[:1]]), colour, 2)
        draw.polygon(px(corners), fill=colour)
        x, y = px(apex[None])[0]
        right = x > 0.75 * size * scale  # near the right edge: the label goes below the camera
        at = (x - 40 * scale, y + 12 * scale) if right else (x + 8 * scale, y - 8 * scale)
        draw.text(at, label, fill=colour, font_size=14 * scale)

    text = caption if caption is not None else f"az {azimuth:g}  el {elevation:g}  r {radius:g}"
    draw.text((8 * scale, (size - 20) * scale), text, fill=(40, 40, 40), font_size=13 * scale)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def parse_camera(values: Sequence[float]) -> dict[str, float]:
    """``{"azimuth", "elevation", "radius"}`` of slider values, checked by
    :meth:`zero123.camera.RelativeCamera.from_params` (errors name the parameter).

    >>> parse_camera((30, 10, 1.0))
    {'azimuth': 30.0, 'elevation': 10.0, 'radius': 1.0}
    """
    azimuth, elevation, radius = (float(v) for v in values)
    params = {"azimuth": azimuth, "elevation": elevation, "radius": radius}
    RelativeCamera.from_params(params, name="camera")
    return params
