"""Reader of the ``views_release`` layout (docs/conventions.md, Dataset layout): pairs of views of one object and their pose T.

Layout (what the original release ships, and what :mod:`zero123.data.writer` writes)::

    root/
      valid_paths.json        JSON list of object folder names
      <object>/000.png ...    RGBA views (transparent background)
      <object>/000.npy ...    3x4 float64 world-to-camera, Blender camera axes (docs/conventions.md, Cameras)

Split: the first 99% of ``valid_paths.json`` (``floor(n * 0.99)`` objects, as the original) is
``"train"``, the rest ``"val"``. For tiny datasets this already keeps one object for validation
whenever there are >= 2 objects (``floor(n * 0.99) = n - 1`` for ``2 <= n < 100``); with exactly 1
object it goes to ``"train"`` and ``"val"`` is empty. Without ``valid_paths.json`` the sorted
sub-folders holding ``NNN.png``/``NNN.npy`` views are used, with a warning.

Views: every ``NNN.png`` needs its ``NNN.npy`` and vice versa, numbered ``000, 001, ...`` without
gaps; anything else is a :class:`ValueError` naming the object folder and the missing files.

The folder-level helpers (:func:`list_objects`, :func:`split_names`, :func:`object_views`) are the
one implementation of this layout; the evaluation reader (:mod:`zero123.eval.views`) and the trainer
use them too.

Pair sampling: two distinct views drawn uniformly; deterministic given ``(seed, epoch, index)``.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from ..camera import CAMERA_EMBEDDINGS, relative_pose_embedding
from ..image_io import composite_on_white, load_image

Split = Literal["train", "val", "all"]
SPLITS: tuple[str, ...] = ("train", "val", "all")


VALID_PATHS = "valid_paths.json"
_VIEW_RE = re.compile(r"^(\d{3,})\.(png|npy)$")


def _holds_views(folder: Path) -> bool:
    return folder.is_dir() and any(_VIEW_RE.match(f.name) for f in folder.iterdir())


def list_objects(root: str | os.PathLike) -> list[str]:
    """The ordered object folder names of a ``views_release`` folder.

    ``valid_paths.json`` (a JSON list of folder names) when present; otherwise the sorted
    sub-folders holding ``NNN.png``/``NNN.npy`` views, with a :class:`UserWarning`.

    Raises:
        FileNotFoundError: ``root`` does not exist or is not a folder.
        ValueError: ``valid_paths.json`` is not a JSON list of strings, or there are no objects.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such dataset folder: {str(root)!r} does not exist or is not a folder")
    vp = root / VALID_PATHS
    if vp.is_file():
        try:
            names = json.loads(vp.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{vp} is not valid JSON: {e}") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{vp} must hold a JSON list of folder names, got {type(names).__name__}")
    else:
        names = sorted(p.name for p in root.iterdir() if _holds_views(p))
        if names:
            warnings.warn(f"{vp} not found; using the {len(names)} sorted sub-folders that hold views", stacklevel=2)
    if not names:
        raise ValueError(
            f"dataset {str(root)!r} has no objects: no object folders found ({VALID_PATHS} is missing or empty and "
            "no sub-folder holds views; expected layout <object>/000.png + 000.npy, 001.png + 001.npy, ...)"
        )
    return names


def object_views(folder: str | os.PathLike) -> list[int]:
    """The view indices ``[0, 1, ..., n - 1]`` of one object folder, after checking that every
    ``NNN.png`` has its ``NNN.npy`` (and vice versa) and that they are numbered without gaps.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: no views, unpaired .png/.npy files (the message names the missing files), or gaps.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"object folder {str(folder)!r} is listed but does not exist")
    pngs: set[int] = set()
    npys: set[int] = set()
    for f in folder.iterdir():
        m = _VIEW_RE.match(f.name)
        if m:
            (pngs if m.group(2) == "png" else npys).add(int(m.group(1)))
    if not pngs and not npys:
        raise ValueError(f"object folder {str(folder)!r} has no NNN.png + NNN.npy views")
    if pngs != npys:
        missing = [f"{i:03d}.npy" for i in sorted(pngs - npys)] + [f"{i:03d}.png" for i in sorted(npys - pngs)]
        shown = ", ".join(missing[:10]) + (f", ... ({len(missing)} in all)" if len(missing) > 10 else "")
        raise ValueError(
            f"object folder {str(folder)!r} has {len(pngs)} .png and {len(npys)} .npy files that do not pair up: "
            f"missing {shown} (each view NNN needs NNN.png and NNN.npy, docs/conventions.md, Dataset layout)"
        )
    n = len(pngs)
    if pngs != set(range(n)):
        raise ValueError(f"object folder {str(folder)!r}: views must be numbered 000..{n - 1:03d} without gaps, "
                         f"found {[f'{i:03d}' for i in sorted(pngs)][:10]}")
    return list(range(n))


def split_names(names: list[str], split: Split) -> list[str]:
    """The split (docs/conventions.md, Dataset layout) of an ordered object list (see the module docstring)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    n_train = math.floor(len(names) * 99 / 100)
    if len(names) == 1:
        n_train = 1
    if split == "train":
        return names[:n_train]
    if split == "val":
        return names[n_train:]
    return list(names)


class ViewsReleaseDataset(torch.utils.data.Dataset):
    """Pairs (condition view, target view) of one object per item.

    ``ds[i]`` is a dict: ``image_target`` and ``image_cond`` (3, H, W) float32 in [-1, 1] (pixels
    with alpha == 0 are white, partial alpha is not blended: docs/conventions.md, Dataset layout), ``pose`` (4,)
    float32 T, ``object_id`` str, ``cond_index`` int, ``target_index`` int.
    """

    def __init__(self, root: str | os.PathLike, split: Split = "train", image_size: int = 256, seed: int = 0,
                 camera_embedding: str = "relative_radius"):
        self.root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 8:
            raise ValueError(f"image_size must be an integer >= 8, got {image_size!r}")
        if camera_embedding not in CAMERA_EMBEDDINGS:
            raise ValueError(f"camera_embedding must be one of {CAMERA_EMBEDDINGS}, got {camera_embedding!r}")
        self.split = split
        self.image_size = image_size
        self.seed = int(seed)
        self.camera_embedding = camera_embedding
        self.epoch = 0
        self._num_views: dict[str, int] = {}
        self.object_ids: list[str] = split_names(list_objects(self.root), split)

    def set_epoch(self, epoch: int) -> None:
        """Change which pairs are drawn (pairs depend on ``(seed, epoch, index)`` only)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.object_ids)

    def num_views(self, object_id: str) -> int:
        """Number of views ``000.png/000.npy, 001...`` in the object's folder (checked by :func:`object_views`)."""
        if object_id not in self._num_views:
            folder = self.root / object_id
            n = len(object_views(folder))
            if n < 2:
                raise ValueError(f"object folder {str(folder)!r} needs at least 2 views (000.png + 000.npy, ...), found {n}")
            self._num_views[object_id] = n
        return self._num_views[object_id]

    def load_image(self, object_id: str, view_index: int) -> torch.Tensor:
        """``(3, H, W)`` float32 in [-1, 1]: read with :func:`zero123.image_io.load_image`, alpha == 0 ->
        white with no blending (:func:`~zero123.image_io.composite_on_white` with ``blend=False``),
        resized (bilinear) to ``image_size``."""
        path = self.root / object_id / f"{view_index:03d}.png"
        img = composite_on_white(load_image(path, name="view image"), blend=False)
        if img.size != (self.image_size, self.image_size):
            img = img.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        arr = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)
        return arr / 127.5 - 1.0

    def load_world_to_cam(self, object_id: str, view_index: int) -> np.ndarray:
        """``(3, 4)`` float64 world-to-camera matrix of a view."""
        path = self.root / object_id / f"{view_index:03d}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"pose file {str(path)!r} does not exist")
        m = np.load(path).astype(np.float64)
        if m.shape not in ((3, 4), (4, 4)) or not np.all(np.isfinite(m)):
            raise ValueError(f"pose file {str(path)!r} must hold a finite 3x4 matrix, got shape {m.shape}")
        return m[:3]

    def sample_pair(self, index: int) -> tuple[int, int]:
        """(cond_index, target_index): two distinct views, deterministic given (seed, epoch, index)."""
        n = self.num_views(self.object_ids[index])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        cond, target = rng.choice(n, size=2, replace=False)
        return int(cond), int(target)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} objects")
        index = index % len(self)
        object_id = self.object_ids[index]
        cond, target = self.sample_pair(index)
        pose = relative_pose_embedding(self.load_world_to_cam(object_id, cond), self.load_world_to_cam(object_id, target),
                                       self.camera_embedding)
        return {
            "image_target": self.load_image(object_id, target),
            "image_cond": self.load_image(object_id, cond),
            "pose": pose,
            "object_id": object_id,
            "cond_index": cond,
            "target_index": target,
        }
