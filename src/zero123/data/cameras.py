"""Random cameras of the training renders (docs/conventions.md, Dataset layout).

Camera distance uniform in [1.5, 2.2]; direction a uniform sample in the cube [-1, 1]^3 normalised
to the sphere (the original's choice: whole sphere, including below, slightly denser towards the
cube's corners) or, with ``direction="uniform"``, uniform on the sphere. An ``elevation_range``
(degrees above the equator) keeps only directions inside that band (rejection sampling, so the
density inside the band is unchanged); the default keeps the whole sphere. Cameras look at the origin
with world +Z up; matrices come from :func:`zero123.camera.world_to_cam_look_at` so the whole project
shares one convention (3x4 world-to-camera, Blender camera axes).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..camera import TRAIN_DISTANCE_RANGE, world_to_cam_look_at

Direction = Literal["cube", "uniform"]
DIRECTIONS: tuple[str, ...] = ("cube", "uniform")


def sample_camera_centers(rng: np.random.Generator, num_views: int = 12, direction: Direction = "cube",
                          distance_range: tuple[float, float] = TRAIN_DISTANCE_RANGE,
                          elevation_range: tuple[float, float] = (-90.0, 90.0)) -> np.ndarray:
    """``(num_views, 3)`` float64 camera centres."""
    if not isinstance(num_views, int) or num_views < 1:
        raise ValueError(f"num_views must be a positive integer, got {num_views!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    lo, hi = distance_range
    if not 0 < lo <= hi:
        raise ValueError(f"distance_range must satisfy 0 < low <= high, got {distance_range}")
    el_lo, el_hi = elevation_range
    if not -90.0 <= el_lo < el_hi <= 90.0:
        raise ValueError(f"elevation_range must satisfy -90 <= low < high <= 90 (degrees), got {elevation_range}")
    z_lo, z_hi = np.sin(np.radians(el_lo)), np.sin(np.radians(el_hi))
    dirs = np.empty((num_views, 3))
    for i in range(num_views):
        while True:  # reject near-zero vectors (measure zero in theory) and directions outside the band
            d = rng.uniform(-1, 1, size=3) if direction == "cube" else rng.normal(size=3)
            n = np.linalg.norm(d)
            if n > 1e-3 and z_lo <= d[2] / n <= z_hi:
                break
        dirs[i] = d / np.linalg.norm(d)
    return dirs * rng.uniform(lo, hi, size=(num_views, 1))


def sample_world_to_cams(rng: np.random.Generator, num_views: int = 12, direction: Direction = "cube",
                         distance_range: tuple[float, float] = TRAIN_DISTANCE_RANGE,
                         elevation_range: tuple[float, float] = (-90.0, 90.0)) -> np.ndarray:
    """``(num_views, 3, 4)`` float64 world-to-camera matrices (Blender camera axes) looking at the origin."""
    centers = sample_camera_centers(rng, num_views, direction, distance_range, elevation_range)
    return np.stack([world_to_cam_look_at(c) for c in centers])
