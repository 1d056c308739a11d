"""zero123: novel views of an object from one photo (Zero-1-to-3), and the tools around it.

Public names are imported lazily so that ``import zero123`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "Zero123Pipeline": ".pipeline",
    "Zero123PipelineOutput": ".pipeline",
    "RelativeCamera": ".camera",
    "CCProjection": ".models.cc_projection",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .camera import RelativeCamera
    from .models.cc_projection import CCProjection
    from .pipeline import Zero123Pipeline, Zero123PipelineOutput


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'zero123' has no attribute {name!r}")
