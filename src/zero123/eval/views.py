"""Read evaluation data in the ``views_release`` layout (docs/conventions.md, Dataset layout), composited for scoring.

Layout (one folder per object under ``root``)::

    root/
      valid_paths.json        optional: JSON list of object folder names (split rule: docs/conventions.md, Dataset layout)
      <object_id>/000.png     RGBA (or RGB) view 0, any square resolution
      <object_id>/000.npy     3x4 float64 world-to-camera matrix, Blender camera axes, z-up world
      <object_id>/001.png ... one .npy per .png, numbered 000, 001, ... without gaps

Object listing, split and view pairing are the training reader's
(:func:`zero123.data.views_release.list_objects`, :func:`~zero123.data.views_release.split_names`,
:func:`~zero123.data.views_release.object_views`): without ``valid_paths.json`` the objects are the
sorted sub-folders holding views (with a warning); the first ``floor(n * 0.99)`` objects are
``train``, the rest ``val``; ``all`` is every object.

Unlike the training reader (which whitens only alpha == 0, docs/conventions.md, Dataset layout), evaluation BLENDS alpha over
white, as the published protocols did (docs/conventions.md, Evaluation protocols), and resizes with PIL's antialiased bicubic filter.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.views_release import SPLITS, Split, list_objects, object_views, split_names
from ..image_io import composite_on_white, load_image

__all__ = ["SPLITS", "Split", "ViewsFolder", "split_object_ids"]


def split_object_ids(ids: list[str], split: Split) -> list[str]:
    """The split (docs/conventions.md, Dataset layout) of an ordered id list (first 99% train, last 1% val): an alias of
    :func:`zero123.data.views_release.split_names`."""
    return split_names(list(ids), split)


class ViewsFolder:
    """Objects of a ``views_release`` folder, for evaluation (alpha-blended loading).

    Args:
        root: the dataset folder.
        split: ``"val"`` (default), ``"train"`` or ``"all"``.

    Raises:
        FileNotFoundError: ``root`` (or a folder named in ``valid_paths.json``) does not exist.
        ValueError: no objects, an empty split, or an object whose .png and .npy files do not pair
            up (raised by :meth:`check` / on first access of that object).
    """

    def __init__(self, root: str | Path, split: Split = "val"):
        self.root = Path(root)
        ids = list_objects(self.root)
        self.split = split
        self.object_ids: list[str] = split_names(ids, split)
        if not self.object_ids:
            raise ValueError(f"data: split {split!r} of {self.root} is empty ({len(ids)} objects in all)")

    # ------------------------------------------------------------------ checks
    @lru_cache(maxsize=None)
    def num_views(self, object_id: str) -> int:
        """Number of views of ``object_id``; validates that every NNN.png has its NNN.npy
        (:func:`zero123.data.views_release.object_views`)."""
        return len(object_views(self.root / object_id))

    def check(self, object_ids: list[str] | None = None) -> None:
        """Validate the given (default: all) objects up front, before any slow work."""
        for oid in object_ids if object_ids is not None else self.object_ids:
            self.num_views(oid)

    # ------------------------------------------------------------------ loading
    def _path(self, object_id: str, view: int, ext: str) -> Path:
        n = self.num_views(object_id)
        if not 0 <= view < n:
            raise ValueError(f"view index {view} out of range for object {object_id!r} with {n} views")
        return self.root / object_id / f"{view:03d}.{ext}"

    def load_rgb(self, object_id: str, view: int, resolution: int | None = None) -> Image.Image:
        """View ``view`` as an RGB PIL image, alpha blended over white, resized to ``resolution``
        (square, antialiased bicubic) when given."""
        path = self._path(object_id, view, "png")
        rgb = composite_on_white(load_image(path, name="data: view image"))
        if resolution is not None and rgb.size != (resolution, resolution):
            rgb = rgb.resize((resolution, resolution), Image.Resampling.BICUBIC)
        return rgb

    def load_world_to_cam(self, object_id: str, view: int) -> np.ndarray:
        """The stored 3x4 float64 world-to-camera matrix (docs/conventions.md, Cameras)."""
        path = self._path(object_id, view, "npy")
        try:
            m = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"data: cannot read pose {path}: {exc}") from None
        if m.shape not in ((3, 4), (4, 4)):
            raise ValueError(f"data: pose {path} must be a 3x4 world-to-camera matrix, got shape {m.shape}")
        return np.asarray(m, dtype=np.float64)[:3]
