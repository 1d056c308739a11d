"""Which checkpoint format is this? (docs/conventions.md, Checkpoint formats)

=================  ==================================================================
``"zero123"``      our own folder: ``model_index.json`` ``_class_name`` ``Zero123Pipeline``
                   with a ``cc_projection`` component (Linear named ``proj``)
``"diffusers_a"``  kxic layout: ``Zero1to3StableDiffusionPipeline``, ``cc_projection`` with
                   ``projection.*`` weights
``"diffusers_b"``  bennyguo / ashawkey layout: ``clip_camera_projection`` component
                   (``CLIPCameraProjection``, weights ``proj.*``)
``"ldm"``          a single original Lightning/LDM file (``.ckpt`` or ``.safetensors``)
=================  ==================================================================
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from .statedict import PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES

CheckpointFormat = Literal["zero123", "diffusers_a", "diffusers_b", "ldm"]
FORMATS: tuple[str, ...] = ("zero123", "diffusers_a", "diffusers_b", "ldm")


def read_model_index(folder: Path) -> dict:
    path = folder / "model_index.json"
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(path)!r} is not valid JSON: {e}") from None


def detect_format(path: str | os.PathLike) -> CheckpointFormat:
    """Classify a local file or folder without loading any weights.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the path is not a format we know.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint path {str(path)!r} does not exist")
    if path.is_file():
        if path.suffix.lower() in SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES:
            return "ldm"
        raise ValueError(
            f"checkpoint {str(path)!r}: unknown file format {path.suffix!r}; expected .ckpt, .safetensors, "
            f".pt, .pth, .bin or a diffusers folder"
        )
    if (path / "config.yaml").is_file() and ((path / "base").is_dir() or (path / "checkpoints").is_dir()):
        raise ValueError(
            f"folder {str(path)!r} is a training run (written by `zero123 train`), not a model: export it first "
            f"with `zero123 export {path} -o MODEL_DIR` and pass MODEL_DIR"
        )
    if (path / "model_index.json").is_file():
        index = read_model_index(path)
        name = index.get("_class_name")
        if "clip_camera_projection" in index or (path / "clip_camera_projection").is_dir():
            return "diffusers_b"
        if name == "Zero1to3StableDiffusionPipeline":
            return "diffusers_a"
        if name == "Zero123Pipeline" and "cc_projection" in index:
            return "zero123" if _cc_config_is_ours(path) else "diffusers_a"
        raise ValueError(
            f"folder {str(path)!r}: unknown pipeline {name!r} in model_index.json; expected Zero123Pipeline "
            f"(ours or bennyguo/ashawkey layout) or Zero1to3StableDiffusionPipeline (kxic layout)"
        )
    if (path / "clip_camera_projection").is_dir():
        return "diffusers_b"
    if (path / "cc_projection").is_dir():
        return "zero123" if _cc_config_is_ours(path) else "diffusers_a"
    raise ValueError(
        f"folder {str(path)!r}: unknown format: no model_index.json, cc_projection/ or clip_camera_projection/ "
        f"(expected a zero123 diffusers folder or a single .ckpt/.safetensors file)"
    )


def _cc_config_is_ours(folder: Path) -> bool:
    cfg = folder / "cc_projection" / "config.json"
    try:
        return "camera_embedding" in json.loads(cfg.read_text())
    except (OSError, json.JSONDecodeError):
        return False
