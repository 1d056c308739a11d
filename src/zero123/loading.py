"""The one way to get a ready pipeline: model name or path, device and dtype in, a pipeline on that
device out. Every CLI command, the web app, batch jobs, training init and evaluation call
:func:`load_pipeline`; it resolves ``device``/``dtype`` (:mod:`zero123.devices`) and builds the
pipeline with :meth:`zero123.Zero123Pipeline.from_pretrained`, whose weights all come through
:func:`zero123.checkpoints.load_components`.
"""

from __future__ import annotations

import os

import torch

from .assets import BUNDLED_MODEL_NAME
from .devices import resolve_device, resolve_dtype
from .pipeline import Zero123Pipeline

#: Model used when none is named: the small model shipped with the package.
DEFAULT_MODEL = BUNDLED_MODEL_NAME


def load_pipeline(
    model: str | os.PathLike = DEFAULT_MODEL,
    *,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = "auto",
    trust_pickle: bool = False,
    use_ema: bool = True,
    camera_embedding: str | None = None,
    progress_bar: bool = False,
) -> Zero123Pipeline:
    """Load ``model`` (any format :func:`zero123.checkpoints.load_components` reads) onto ``device``.

    Args:
        model: ``"bundled"`` (default), a folder, an original ``.ckpt``/``.safetensors`` file or a
            known name found in the local Hugging Face cache.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
        dtype: ``"auto"`` (fp16 on CUDA, fp32 elsewhere), ``"fp32"``, ``"fp16"``, ``"bf16"`` or a ``torch.dtype``.
        trust_pickle: allow unpickling an original Lightning ``.ckpt`` (only for files you trust).
        use_ema: the EMA U-Net weights of an original file (the official demo's choice).
        camera_embedding: override what the 4th slot of T holds (``"relative_radius"``/``"cond_polar"``).
        progress_bar: keep the pipeline's own per-step bar (off by default: callers show their own
            progress). The per-component loading bars of diffusers/transformers are always hidden.

    Raises:
        ValueError: a bad device or dtype (checked before any weight is read), or a bad checkpoint.
        FileNotFoundError: the model is neither a local path, ``"bundled"`` nor a cached known name.
    """
    # 1. Resolve device and dtype first: a typo fails in milliseconds, not after loading weights.
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    # 2. Load the weights through the one checkpoint path (third-party loading bars off).
    pipe = Zero123Pipeline.from_pretrained(
        model, dtype=dt, trust_pickle=trust_pickle, use_ema=use_ema, camera_embedding=camera_embedding
    )
    # 3. Move to the device.
    pipe = pipe.to(dev)
    pipe.set_progress_bar_config(disable=not progress_bar)
    return pipe
