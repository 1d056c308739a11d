"""Devices, dtypes and CPU threads: one place that turns what a user typed into torch objects.

Every entry point (the Python loader :func:`zero123.loading.load_pipeline`, every CLI command, the
web app and batch jobs) resolves ``device``, ``dtype`` and ``threads`` here, so a bad value gives the
same one-line error everywhere.
"""

from __future__ import annotations

import torch

DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda, cuda:N or mps"
DTYPE_HELP = "auto (fp16 on CUDA, fp32 elsewhere), fp32, fp16 or bf16"

_DTYPE_NAMES = {
    "fp32": torch.float32, "float32": torch.float32, "float": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """A usable ``torch.device`` for ``device`` (``"auto"``/``None``: CUDA when available, else CPU).

    Raises:
        ValueError: an unknown name, CUDA on a machine (or torch build) without it, a CUDA index that
            does not exist, or MPS where it is unavailable; the message says what to pass instead.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        text = str(device)
    else:
        text = ("auto" if device is None else str(device)).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"device must be {DEVICE_HELP}; got {text!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build is CPU-only" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {text!r}: CUDA is not available ({why}); use device 'cpu' (or a CUDA build of torch on a GPU machine)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {text!r}: only {count} CUDA device(s) present (cuda:0 to cuda:{count - 1})")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if not (mps is not None and mps.is_available()):
            raise ValueError(f"device {text!r}: MPS (Apple GPU) is not available on this machine; use device 'cpu'")
    elif dev.type != "cpu":
        raise ValueError(f"device must be {DEVICE_HELP}; got {text!r}")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The weights' dtype for ``dtype`` on ``device`` (``"auto"``/``None``: fp16 on CUDA, fp32 elsewhere).

    Raises:
        ValueError: an unknown name, or float16 on the CPU (unsupported there; the message says what to use).

    >>> resolve_dtype("bf16", torch.device("cpu"))
    torch.bfloat16
    """
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        text = ("auto" if dtype is None else str(dtype)).strip().lower().replace("torch.", "")
        if text == "auto":
            return torch.float16 if device.type == "cuda" else torch.float32
        if text not in _DTYPE_NAMES:
            raise ValueError(f"dtype must be {DTYPE_HELP}; got {dtype!r}")
        resolved = _DTYPE_NAMES[text]
    if resolved not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {resolved}")
    if resolved == torch.float16 and device.type == "cpu":
        raise ValueError("dtype fp16 is not supported on CPU; use fp32 (or bf16), or a CUDA device")
    return resolved


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).replace("torch.", "")
