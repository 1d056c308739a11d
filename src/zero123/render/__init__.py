"""Headless rendering of object views: one interface, two backends.

* ``"torch"``: pure PyTorch rasterizer (:class:`~zero123.render.torch_backend.TorchRenderer`),
  always available, the reference.
* ``"gl"``: moderngl on EGL (:class:`~zero123.render.gl_backend.GLRenderer`), fast; needs
  ``pip install 'zero123[gl]'`` and Mesa EGL (``apt-get install libegl1 libgl1-mesa-dri libegl-mesa0``).

Both render a :class:`RenderMesh` under a :class:`Light` from ``(N, 3, 4)`` world-to-camera
matrices (Blender camera axes, docs/conventions.md, Cameras) with a square pinhole camera of horizontal FOV
``fov_deg`` (49.13 deg = 35 mm lens on a 32 mm sensor, docs/conventions.md, Dataset layout), and return
``(N, H, W, 4)`` uint8 straight RGBA with anti-aliased, exact-coverage alpha on a transparent
background.

>>> from zero123.render import create_renderer
>>> from zero123.data.objects import marker_cube
>>> from zero123.camera import world_to_cam_from_spherical
>>> r = create_renderer("torch", image_size=32)
>>> r.render(marker_cube(), world_to_cam_from_spherical(1.0, 0.3, 1.8)[None]).shape
(1, 32, 32, 4)
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

from .mesh import Light, RenderMesh, concatenate, vertex_normals

Backend = Literal["torch", "gl", "auto"]
BACKENDS: tuple[str, ...] = ("torch", "gl", "auto")
#: Horizontal field of view of the original renders: 35 mm lens, 32 mm sensor (docs/conventions.md, Dataset layout).
DEFAULT_FOV_DEG = 49.13

__all__ = ["Backend", "BACKENDS", "DEFAULT_FOV_DEG", "Light", "RenderMesh", "Renderer", "available_backends",
           "concatenate", "create_renderer", "vertex_normals"]


class Renderer(Protocol):
    backend: str
    image_size: int

    def render(self, mesh: RenderMesh, world_to_cams: np.ndarray, light: Light = ...) -> np.ndarray: ...

    def close(self) -> None: ...


def available_backends() -> list[str]:
    """Backends that work on this machine (``"torch"`` always)."""
    from .gl_backend import gl_available

    return ["torch", "gl"] if gl_available() else ["torch"]


def create_renderer(backend: Backend = "auto", image_size: int = 256, fov_deg: float = DEFAULT_FOV_DEG) -> Renderer:
    """Make a renderer. ``"auto"`` picks ``gl`` when EGL works, else ``torch``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(image_size, int) or isinstance(image_size, bool) or not 8 <= image_size <= 4096:
        raise ValueError(f"image_size must be an integer in [8, 4096], got {image_size!r}")
    if not 1.0 <= float(fov_deg) <= 170.0:
        raise ValueError(f"fov_deg must be in [1, 170] degrees, got {fov_deg!r}")
    if backend in ("gl", "auto"):
        from .gl_backend import GLRenderer

        try:
            return GLRenderer(image_size=image_size, fov_deg=fov_deg)
        except (RuntimeError, ImportError):
            if backend == "gl":
                raise
    from .torch_backend import TorchRenderer

    return TorchRenderer(image_size=image_size, fov_deg=fov_deg)
