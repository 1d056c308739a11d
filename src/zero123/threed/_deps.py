"""Optional dependencies of the 3D tools: a clear error naming the extra when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..preprocess import MissingDependencyError  # ImportError and ValueError: a one-line CLI error

#: module name -> (pip package, what it is used for)
OPTIONAL: dict[str, tuple[str, str]] = {
    "xatlas": ("xatlas", "UV unwrapping of the mesh for its texture"),
    "fast_simplification": ("fast-simplification", "mesh decimation (max_faces)"),
    "imageio_ffmpeg": ("imageio-ffmpeg", "the turntable video (mp4)"),
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the package and the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package, purpose = OPTIONAL.get(module, (module, "the 3D tools"))
        raise MissingDependencyError(
            f"{package} is needed for {purpose}: pip install 'zero123[3d]' (or pip install {package})"
        ) from None
