"""Read evaluation data in the ``views_release`` layout (SPEC section 6), composited for scoring.

Layout (one folder per object under ``root``)::

    root/
      valid_paths.json        optional: JSON list of object folder names (SPEC 6 split rule)
      <object_id>/000.png     RGBA (or RGB) view 0, any square resolution
      <object_id>/000.npy     3x4 float64 world-to-camera matrix, Blender camera axes, z-up world
      <object_id>/001.png ... one .npy per .png, numbered 000, 001, ... without gaps

Without ``valid_paths.json`` the objects are the sub-folders holding ``NNN.png`` files, sorted by
name. Splits are the training reader's (:func:`zero123.data.views_release.split_names`): the first
``floor(n * 0.99)`` objects are ``train``, the rest ``val``; ``all`` is every object.

Unlike the training reader (which whitens only alpha == 0, SPEC 6), evaluation BLENDS alpha over
white, as the published protocols did (SPEC 10), and resizes with PIL's antialiased bicubic filter.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from ..preprocess import composite_on_white

Split = Literal["train", "val", "all"]
SPLITS: tuple[str, ...] = ("train", "val", "all")
_VIEW_RE = re.compile(r"^(\d{3,})\.(png|npy)$")


def split_object_ids(ids: list[str], split: Split) -> list[str]:
    """SPEC 6 split of an ordered id list (first 99% train, last 1% val), the same rule as the
    training reader (:func:`zero123.data.views_release.split_names`)."""
    from ..data.views_release import split_names

    return split_names(list(ids), split)


class ViewsFolder:
    """Objects of a ``views_release`` folder, for evaluation.

    Args:
        root: the dataset folder.
        split: ``"val"`` (default), ``"train"`` or ``"all"``.

    Raises:
        FileNotFoundError: ``root`` (or a folder named in ``valid_paths.json``) does not exist.
        ValueError: no objects, or an object whose .png and .npy files do not pair up
            (raised by :meth:`check` / on first access of that object).
    """

    def __init__(self, root: str | Path, split: Split = "val"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"data: no such dataset folder: {self.root}")
        valid = self.root / "valid_paths.json"
        if valid.is_file():
            try:
                ids = json.loads(valid.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"data: {valid} is not valid JSON: {exc}") from None
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ValueError(f"data: {valid} must be a JSON list of folder names")
        else:
            ids = sorted(
                p.name for p in self.root.iterdir() if p.is_dir() and any(_VIEW_RE.match(f.name) for f in p.iterdir())
            )
        if not ids:
            raise ValueError(
                f"data: no object folders found in {self.root} (expected views_release layout: "
                "<object_id>/000.png + 000.npy, 001.png + 001.npy, ...)"
            )
        self.split = split
        self.object_ids: list[str] = split_object_ids(ids, split)
        if not self.object_ids:
            raise ValueError(f"data: split {split!r} of {self.root} is empty ({len(ids)} objects in all)")

    # ------------------------------------------------------------------ checks
    @lru_cache(maxsize=None)
    def num_views(self, object_id: str) -> int:
        """Number of views of ``object_id``; validates that every NNN.png has its NNN.npy."""
        folder = self.root / object_id
        if not folder.is_dir():
            raise FileNotFoundError(f"data: object folder listed but missing: {folder}")
        pngs, npys = set(), set()
        for f in folder.iterdir():
            m = _VIEW_RE.match(f.name)
            if m:
                (pngs if m.group(2) == "png" else npys).add(int(m.group(1)))
        if not pngs:
            raise ValueError(f"data: object {object_id!r} has no NNN.png views in {folder}")
        if pngs != npys:
            raise ValueError(
                f"data: object {object_id!r} has {len(pngs)} .png and {len(npys)} .npy files that do not pair up "
                f"(png without npy: {sorted(pngs - npys)[:5]}, npy without png: {sorted(npys - pngs)[:5]})"
            )
        if pngs != set(range(len(pngs))):
            raise ValueError(f"data: object {object_id!r} views must be numbered 000..{len(pngs) - 1:03d} without gaps")
        return len(pngs)

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
        try:
            with Image.open(path) as im:
                im.load()
                rgb = composite_on_white(im)
        except OSError as exc:
            raise ValueError(f"data: cannot read image {path}: {exc}") from None
        if resolution is not None and rgb.size != (resolution, resolution):
            rgb = rgb.resize((resolution, resolution), Image.Resampling.BICUBIC)
        return rgb

    def load_world_to_cam(self, object_id: str, view: int) -> np.ndarray:
        """The stored 3x4 float64 world-to-camera matrix (SPEC 4)."""
        path = self._path(object_id, view, "npy")
        try:
            m = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"data: cannot read pose {path}: {exc}") from None
        if m.shape not in ((3, 4), (4, 4)):
            raise ValueError(f"data: pose {path} must be a 3x4 world-to-camera matrix, got shape {m.shape}")
        return np.asarray(m, dtype=np.float64)[:3]
