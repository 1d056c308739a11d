"""One entry point for every checkpoint format: :func:`load_components` returns the five pipeline
components (``vae``, ``image_encoder``, ``unet``, ``scheduler``, ``cc_projection``) of any supported
source -- our own folders, ``"bundled"``, original single files, both community diffusers layouts and
known names -- so ``Zero123Pipeline.from_pretrained``, ``zero123 info`` and ``zero123 convert`` share it.
This layer never imports the pipeline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..camera import CAMERA_EMBEDDINGS
from ..devices import dtype_from_name
from ..utils.quiet import no_loading_bars
from .build import build_models
from .convert_ldm import convert_ldm_state_dict
from .detect import CheckpointFormat, detect_format
from .layouts import load_folder_components
from .registry import infer_camera_embedding, resolve
from .statedict import read_checkpoint

@dataclass
class LoadedCheckpoint:
    """What :func:`load_components` found: the components and facts about the source."""

    components: dict[str, Any]
    format: CheckpointFormat
    path: Path
    camera_embedding: str
    has_ema: bool | None = None  # None: the format does not carry EMA weights separately
    used_ema: bool | None = None
    ignored_keys: list[str] = field(default_factory=list)


@no_loading_bars()  # diffusers/transformers per-component bars stay out of our output
def load_components(
    path_or_name: str | os.PathLike,
    *,
    torch_dtype: torch.dtype | str | None = torch.float32,
    use_ema: bool = True,
    camera_embedding: str | None = None,
    trust_pickle: bool = False,
    config_overrides: dict[str, dict[str, Any]] | None = None,
    local_files_only: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> LoadedCheckpoint:
    """Load any supported checkpoint into our components.

    Args:
        path_or_name: a single original ``.ckpt`` / ``.safetensors`` file, a diffusers folder in
            layout A (kxic) or B (bennyguo, ashawkey) or ours, ``"bundled"``, or a known name /
            repository id (``zero123-105000``, ``zero123-165000``, ``zero123-xl``, ``stable-zero123``,
            ``kxic/...``, ``bennyguo/...``, ``ashawkey/...``) found in the local Hugging Face cache
            (see ``docs/conventions.md``, "Checkpoint formats").
        torch_dtype: dtype of the loaded weights (``None`` keeps the stored dtype of an original
            file); a ``torch.dtype`` or a name such as ``"fp16"`` (:func:`zero123.devices.dtype_from_name`).
        use_ema: use the EMA U-Net weights of an original file when present (the official demo does).
        camera_embedding: ``"relative_radius"`` (Zero-1-to-3) or ``"cond_polar"`` (Stable Zero123);
            inferred from a known name, file name or metadata when unambiguous, else relative_radius.
        trust_pickle: allow unpickling a Lightning file that cannot be read with ``weights_only=True``.
        config_overrides: per-component config values shapes cannot show (original files only).
        local_files_only, cache_dir: Hugging Face cache lookup of known names.

    Raises:
        FileNotFoundError, PermissionError, ValueError: with a message naming the problem.
    """
    dtype = None if torch_dtype is None else dtype_from_name(torch_dtype, name="torch_dtype")
    if camera_embedding is not None and camera_embedding not in CAMERA_EMBEDDINGS:
        raise ValueError(f"camera_embedding must be one of {CAMERA_EMBEDDINGS}, got {camera_embedding!r}")
    # 1. Name -> local path (known names, HF cache).
    path = resolve(path_or_name, local_files_only=local_files_only, cache_dir=cache_dir)
    fmt = detect_format(path)
    inferred = infer_camera_embedding(str(path_or_name)) or infer_camera_embedding(str(path))
    # 2. Folders: standard components + the camera projection of that layout.
    if fmt != "ldm":
        if config_overrides:
            raise ValueError(f"config_overrides apply to original single-file checkpoints only; {str(path)!r} is a {fmt} folder")
        kind = camera_embedding or inferred or "relative_radius"
        comps = load_folder_components(path, fmt, camera_embedding=kind, dtype=dtype)
        return LoadedCheckpoint(comps, fmt, path, comps["cc_projection"].config.camera_embedding)
    # 3. Original file: lazy read, convert, assign.
    sd, _extras = read_checkpoint(path, trust_pickle=trust_pickle)
    meta = sd.metadata.get("camera_embedding")
    kind = camera_embedding or (meta if meta in CAMERA_EMBEDDINGS else None) or inferred or "relative_radius"
    converted = convert_ldm_state_dict(sd, use_ema=use_ema, config_overrides=config_overrides, source=str(path))
    mapped = path if path.suffix.lower() != ".safetensors" else None
    comps = build_models(converted, camera_embedding=kind, dtype=dtype, mapped_file=mapped)
    return LoadedCheckpoint(comps, fmt, path, kind, converted.has_ema, converted.used_ema, converted.ignored)
