"""The rows of a batch job: a JSON Lines manifest, or a folder of images with one camera list.

A manifest has one JSON object per line (blank lines are skipped)::

    {"id": "mug", "image": "imgs/mug.png", "cameras": [{"azimuth": 90, "elevation": 0}], "seed": 1}

* ``id``: the row's output folder name, unique in the manifest: letters, digits, ``.``, ``_``, ``-``,
  not starting with ``.`` (default: the image's file stem; a clash is an error, never a rename).
* ``image``: a path, relative to the manifest's folder unless absolute.
* ``cameras``: camera changes as in the Python API (:func:`zero123.nvs.generate_views`):
  ``{"azimuth", "elevation", "radius"}`` or ``"delta_radius"``; default: the job's cameras.
* ``seed``: view ``i`` of the row is sampled with seed ``seed + i``; default: the job's seed.
* ``cond_elevation``: the input view's elevation in degrees (Stable Zero123 models), optional.
* ``meta``: anything JSON, copied to the row's result line untouched.

A row that cannot be used (not JSON, a bad camera, a duplicate id, ...) is still a row: it carries
an ``error`` and becomes a failed result, so one bad line never stops a job.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Names in the output folder that belong to the job, never to a row.
RESERVED_IDS = frozenset({"results.jsonl", "batch.json", "results.d"})
#: Image files a folder manifest picks up.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
ROW_KEYS = ("id", "image", "cameras", "seed", "cond_elevation", "meta")

_ID_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True)
class BatchRow:
    """One input of a batch job.

    Attributes:
        id: output folder name (``DIR/<id>/``), unique in the job.
        index: position in the manifest (0-based, blank lines not counted): shards and the order
            of ``results.jsonl`` follow it.
        image: the image path as the manifest wrote it (part of the row's identity).
        image_path: where to read it (relative paths resolved against the manifest's folder).
        cameras: camera changes, each ``{"azimuth", "elevation", "radius"}`` (degrees, distance
            ratio) or with ``"delta_radius"`` (zero123's distance change) instead of ``"radius"``.
        seed: view ``i`` is sampled with seed ``seed + i``.
        cond_elevation: the input view's elevation in degrees, or ``None``.
        meta: the manifest's ``meta`` value, copied to the result line.
        error: why the row cannot run (a failed row), or ``None``.
    """

    id: str
    index: int
    image: str = ""
    image_path: str = ""
    cameras: tuple[dict[str, float], ...] = ()
    seed: int = 0
    cond_elevation: float | None = None
    meta: Any = None
    error: str | None = None

    def key(self) -> dict[str, Any]:
        """What the row's outputs depend on besides the job settings; a finished row whose key
        differs from the manifest's is redone."""
        return {"image": self.image, "cameras": [dict(c) for c in self.cameras], "seed": self.seed,
                "cond_elevation": self.cond_elevation}

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "index": self.index, "image": self.image, "image_path": self.image_path,
                "cameras": [dict(c) for c in self.cameras], "seed": self.seed,
                "cond_elevation": self.cond_elevation, "meta": self.meta, "error": self.error}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "BatchRow":
        return cls(id=d["id"], index=int(d["index"]), image=d["image"], image_path=d["image_path"],
                   cameras=tuple(dict(c) for c in d["cameras"]), seed=int(d["seed"]),
                   cond_elevation=d["cond_elevation"], meta=d["meta"], error=d["error"])


@dataclass(frozen=True)
class RowDefaults:
    """What a row gets when it does not say: the job's cameras (``()``: rows must give theirs), seed
    and input elevation (``cond_elevation``, degrees; ``None``: not given).

    ``needs_cameras=False`` for tasks that choose their own cameras (``--task reconstruct``): rows
    may then give none.
    """

    cameras: tuple[Mapping[str, float], ...] = ()
    seed: int = 0
    cond_elevation: float | None = None
    needs_cameras: bool = True

    def __post_init__(self):
        from ..camera import check_cond_elevation

        _check_seed(self.seed, "seed")
        object.__setattr__(self, "cameras", _check_cameras(self.cameras, "cameras") if self.cameras else ())
        object.__setattr__(self, "cond_elevation", check_cond_elevation(self.cond_elevation))


def read_manifest(path: str | os.PathLike, defaults: RowDefaults | None = None) -> list[BatchRow]:
    """The rows of a JSON Lines manifest (bad lines become rows with an ``error``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not UTF-8 text or has no rows.
    """
    defaults = RowDefaults() if defaults is None else defaults
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {str(path)!r} does not exist (give a .jsonl file or a folder of images)")
    rows: list[BatchRow] = []
    with open(path, encoding="utf-8") as f:
        line_no = 0
        try:
            for line_no, text in enumerate(f, start=1):
                if text.strip():
                    rows.append(_parse_line(text, line_no, len(rows), path.parent, defaults))
        except UnicodeDecodeError as e:
            raise ValueError(f"manifest {str(path)!r} is not UTF-8 JSON Lines text (line {line_no + 1}: {e.reason})") from None
    if not rows:
        raise ValueError(f"manifest {str(path)!r} has no rows (one JSON object per line)")
    return _mark_duplicates(rows)


def rows_from_folder(folder: str | os.PathLike, defaults: RowDefaults) -> list[BatchRow]:
    """One row per image file in ``folder`` (sorted by name; not recursive), with the job's cameras
    and seed; ids are the file stems (clashes such as ``a.png`` + ``a.jpg`` are failed rows).

    Raises:
        ValueError: no cameras in ``defaults`` (when the task needs them), or no images in the folder.
    """
    folder = Path(folder)
    if not defaults.cameras and defaults.needs_cameras:
        raise ValueError("a folder of images needs the cameras to render: give --azimuth (and --elevation/--radius)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"folder {str(folder)!r} has no images ({', '.join(IMAGE_SUFFIXES)})")
    rows = [_parse_object({"image": str(p)}, i, folder, defaults, where=f"image {p.name!r}")
            for i, p in enumerate(files)]
    return _mark_duplicates(rows)


def load_rows(source: str | os.PathLike, defaults: RowDefaults | None = None) -> list[BatchRow]:
    """:func:`read_manifest` for a file, :func:`rows_from_folder` for a folder."""
    defaults = RowDefaults() if defaults is None else defaults
    return rows_from_folder(source, defaults) if Path(source).is_dir() else read_manifest(source, defaults)


def select_shard(rows: Sequence[BatchRow], shard_index: int, num_shards: int) -> list[BatchRow]:
    """Rows whose manifest ``index % num_shards == shard_index`` (job arrays: one shard per job).

    >>> [r.index for r in select_shard([BatchRow(str(i), i) for i in range(5)], 1, 2)]
    [1, 3]
    """
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"num_shards must be a positive integer, got {num_shards!r}")
    if isinstance(shard_index, bool) or not isinstance(shard_index, int) or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be an integer in [0, {num_shards - 1}] (num_shards is {num_shards}), got {shard_index!r}")
    return [r for r in rows if r.index % num_shards == shard_index]


# ---------------------------------------------------------------------- parsing
def _parse_line(text: str, line_no: int, index: int, base: Path, defaults: RowDefaults) -> BatchRow:
    where = f"line {line_no}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return BatchRow(id=f"#row{index}", index=index, error=f"{where}: not valid JSON ({e.msg} at column {e.colno})")
    if not isinstance(obj, dict):
        return BatchRow(id=f"#row{index}", index=index, error=f"{where}: a row must be a JSON object, got {type(obj).__name__}")
    return _parse_object(obj, index, base, defaults, where=where)


def _parse_object(obj: dict, index: int, base: Path, defaults: RowDefaults, *, where: str) -> BatchRow:
    image = obj.get("image")
    # the id first, so that even a bad row is reported under its own name
    raw_id = obj["id"] if "id" in obj else _id_from_file_name(image)
    fallback_id = f"#row{index}"
    try:
        row_id = _check_id(raw_id)
    except ValueError as e:
        return BatchRow(id=fallback_id, index=index, error=f"{where}: {e}")
    try:
        unknown = sorted(set(obj) - set(ROW_KEYS))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; a row has {list(ROW_KEYS)} (put your own data under 'meta')")
        if not isinstance(image, str) or not image:
            raise ValueError(f"'image' must be a non-empty path string, got {image!r}")
        cameras = _check_cameras(obj["cameras"], "cameras") if "cameras" in obj else defaults.cameras
        if not cameras and defaults.needs_cameras:
            raise ValueError("no cameras: give 'cameras': [{\"azimuth\": ..., \"elevation\": ...}] or the job's --azimuth")
        seed = _check_seed(obj.get("seed", defaults.seed), "'seed'")
        cond = obj.get("cond_elevation", defaults.cond_elevation)
        if cond is not None and not _is_number(cond):
            raise ValueError(f"'cond_elevation' must be a number of degrees, got {cond!r}")
    except (ValueError, TypeError) as e:
        return BatchRow(id=row_id, index=index, image=image if isinstance(image, str) else "", error=f"{where} (id {row_id!r}): {e}")
    path = Path(image).expanduser()
    return BatchRow(id=row_id, index=index, image=image, image_path=str(path if path.is_absolute() else base / path),
                    cameras=cameras, seed=seed, cond_elevation=None if cond is None else float(cond), meta=obj.get("meta"))


def _id_from_file_name(image: Any) -> str | None:
    """The default id: the image's file stem with characters an id cannot hold replaced by ``_``."""
    if not isinstance(image, str) or not image:
        return None
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(image).stem)[:200]
    return "_" + stem[1:] if stem.startswith(".") else stem


def _check_id(value: Any) -> str:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value) or value in RESERVED_IDS:
        raise ValueError(f"'id' must be 1-200 letters, digits, '.', '_' or '-', not starting with '.', and not one of "
                         f"{sorted(RESERVED_IDS)}; got {value!r}")
    return value


def _check_seed(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _check_cameras(value: Any, name: str) -> tuple[dict[str, float], ...]:
    """The cameras checked by the camera core, with their defaults written out (azimuth and
    elevation 0, radius 1 unless ``delta_radius`` is given); values are kept as given, so the
    pipeline sees exactly what a Python API call with the same dicts would."""
    from ..camera import RelativeCamera

    if not isinstance(value, Sequence) or isinstance(value, (str, bytes, Mapping)) or not value:
        raise ValueError(f"{name!r} must be a non-empty list of camera dicts like {{\"azimuth\": 90, \"elevation\": 0}}, got {value!r}")
    out = []
    for i, cam in enumerate(value):
        label = f"{name}[{i}]"
        if isinstance(cam, Mapping):
            for k, v in cam.items():
                if not _is_number(v):
                    raise ValueError(f"{label}: {k!r} must be a finite number, got {v!r}")
        RelativeCamera.from_params(cam, name=label)  # unknown keys, radius + delta_radius, ...
        full = {"azimuth": float(cam.get("azimuth", 0.0)), "elevation": float(cam.get("elevation", 0.0))}
        if "delta_radius" in cam:
            full["delta_radius"] = float(cam["delta_radius"])
        else:
            full["radius"] = float(cam.get("radius", 1.0))
        out.append(full)
    return tuple(out)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _mark_duplicates(rows: list[BatchRow]) -> list[BatchRow]:
    first: dict[str, int] = {}
    out = []
    for r in rows:
        if r.id in first:
            r = BatchRow(id=f"#row{r.index}", index=r.index, image=r.image,
                         error=f"row {r.index}: duplicate id {r.id!r} (first used by row {first[r.id]}); ids name output folders and must be unique")
        first.setdefault(r.id, r.index)
        out.append(r)
    return out


__all__ = ["BatchRow", "RowDefaults", "read_manifest", "rows_from_folder", "load_rows", "select_shard", "RESERVED_IDS"]
