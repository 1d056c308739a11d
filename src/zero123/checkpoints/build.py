"""Instantiate components from (config, state dict) pairs without a throw-away random init.

Parameters are created empty (``accelerate.init_empty_weights``: on the meta device, buffers
normal) and then *assigned* the checkpoint's tensors, so a memory-mapped file is not copied
when the dtype already matches. Keys and shapes are checked first, with messages that name them.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
from typing import Any

import torch

from .convert_ldm import ConvertedComponent, ConvertedLDM


def file_mappings(path) -> list[tuple[int, int]]:
    """Address ranges where ``path`` is memory-mapped privately in this process (Linux ``/proc/self/maps``)."""
    if path is None or not sys.platform.startswith("linux"):
        return []
    target = os.path.realpath(path)
    ranges = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].strip() == target and parts[1][3] == "p":
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    ranges.append((lo, hi))
    except OSError:
        return []
    return ranges


def _drop_pages(t: torch.Tensor, mappings: list[tuple[int, int]]) -> None:
    """Tell the kernel we are done with the memory-mapped pages of ``t``.

    After a dtype conversion the source pages of a mapped checkpoint are never read again;
    ``MADV_DONTNEED`` on a private, unmodified file mapping drops them from this process's resident
    set (they stay in the page cache, and would be re-read from the file if touched). Only whole
    pages inside the tensor and inside a mapping of the checkpoint file are released.
    """
    if not mappings or t.device.type != "cpu" or t.numel() == 0:
        return
    page = mmap.PAGESIZE
    start = t.data_ptr()
    end = start + t.numel() * t.element_size()
    if not any(lo <= start and end <= hi for lo, hi in mappings):
        return
    lo, hi = (start + page - 1) // page * page, end // page * page
    if hi > lo:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), 4)  # 4 = MADV_DONTNEED


def _prepare(t: torch.Tensor, dtype: torch.dtype | None, mappings) -> torch.Tensor:
    if dtype is not None and t.is_floating_point() and t.dtype != dtype:
        out = t.to(dtype).contiguous()
        _drop_pages(t, mappings)
        return out
    return t if t.is_contiguous() else t.contiguous()


def assign_state_dict(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], component: str,
                      dtype: torch.dtype | None = None, mappings=()) -> torch.nn.Module:
    """Load ``state_dict`` into an empty ``model`` by assignment, after checking names and shapes.

    Raises:
        ValueError: a key is missing, unexpected, or has the wrong shape (named, with both shapes).
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}" + (" ..." if len(unexpected) > 5 else ""))
        raise ValueError(f"{component}: state dict does not match the model: " + "; ".join(parts))
    for k, ref in expected.items():
        if tuple(state_dict[k].shape) != tuple(ref.shape):
            raise ValueError(
                f"{component}: wrong shape for {k!r}: checkpoint has {list(state_dict[k].shape)}, "
                f"the model expects {list(ref.shape)}"
            )
    if next(iter(state_dict.values())).device.type == "meta":  # structure checks only
        return model
    model.load_state_dict({k: _prepare(v, dtype, mappings) for k, v in state_dict.items()}, strict=True, assign=True)
    return model.eval()


def build_models(
    converted: ConvertedLDM, *, camera_embedding: str, dtype: torch.dtype | None = None, mapped_file=None
) -> dict[str, Any]:
    """Components dict (``vae``, ``image_encoder``, ``unet``, ``scheduler``, ``cc_projection``).

    ``mapped_file``: the checkpoint file the tensors are memory-mapped from, whose pages may be
    released after a dtype conversion.
    """
    mappings = file_mappings(mapped_file)
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from ..models.cc_projection import CCProjection
    from ..models.factory import SCHEDULER_CONFIG

    def make(factory, comp: ConvertedComponent, name: str):
        with init_empty_weights():
            model = factory(comp.config)
        return assign_state_dict(model, comp.state_dict, name, dtype, mappings)

    return dict(
        vae=make(lambda c: AutoencoderKL(**c), converted.vae, "vae"),
        image_encoder=make(
            lambda c: CLIPVisionModelWithProjection(CLIPVisionConfig(**c)), converted.image_encoder, "image_encoder"
        ),
        unet=make(lambda c: UNet2DConditionModel(**c), converted.unet, "unet"),
        scheduler=DDIMScheduler(**SCHEDULER_CONFIG),
        cc_projection=make(
            lambda c: CCProjection(**c, camera_embedding=camera_embedding), converted.cc_projection, "cc_projection"
        ),
    )
