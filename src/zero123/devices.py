"""Devices, dtypes and CPU threads: one place that turns what a user typed into torch objects.

Every entry point (the Python loader :func:`zero123.loading.load_pipeline`, every CLI command, the
web app and batch jobs) resolves ``device``, ``dtype`` and ``threads`` here, so a bad value gives the
same one-line error everywhere.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported inside the functions: the CLI reads this module's texts cheaply
    import torch

DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda, cuda:N or mps"
DTYPE_HELP = "auto (fp16 on CUDA, fp32 elsewhere), fp32, fp16 or bf16"

_DTYPE_NAMES = {
    "fp32": "float32", "float32": "float32", "float": "float32",
    "fp16": "float16", "float16": "float16", "half": "float16",
    "bf16": "bfloat16", "bfloat16": "bfloat16",
}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """A usable ``torch.device`` for ``device`` (``"auto"``/``None``: CUDA when available, else CPU).

    Raises:
        ValueError: an unknown name, CUDA on a machine (or torch build) without it, a CUDA index that
            does not exist, or MPS where it is unavailable; the message says what to pass instead.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

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


def dtype_from_name(dtype: str | torch.dtype, *, name: str = "dtype") -> torch.dtype:
    """The ``torch.dtype`` a name stands for (``"fp32"``/``"float32"``, ``"fp16"``/``"half"``,
    ``"bf16"``/``"bfloat16"``; a ``torch.dtype`` is returned as is), with no device check. The one
    table of dtype names: the loader, the checkpoint converter and every command use it.

    Raises:
        ValueError: an unknown name, or a dtype other than float32, float16 and bfloat16; the
            message starts with ``name``.

    >>> dtype_from_name("half")
    torch.float16
    """
    import torch

    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        text = str(dtype).strip().lower().replace("torch.", "")
        if text not in _DTYPE_NAMES:
            raise ValueError(f"{name} must be {DTYPE_HELP}; got {dtype!r}")
        resolved = getattr(torch, _DTYPE_NAMES[text])
    if resolved not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"{name} must be float32, float16 or bfloat16, got {resolved}")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The weights' dtype for ``dtype`` on ``device`` (``"auto"``/``None``: fp16 on CUDA, fp32 elsewhere).

    Raises:
        ValueError: an unknown name, or float16 on the CPU (unsupported there; the message says what to use).

    >>> import torch; resolve_dtype("bf16", torch.device("cpu"))
    torch.bfloat16
    """
    import torch

    if dtype is None or (isinstance(dtype, str) and dtype.strip().lower() == "auto"):
        return torch.float16 if device.type == "cuda" else torch.float32
    resolved = dtype_from_name(dtype)
    if resolved == torch.float16 and device.type == "cpu":
        raise ValueError("dtype fp16 is not supported on CPU; use fp32 (or bf16), or a CUDA device")
    return resolved


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).replace("torch.", "")


# ---------------------------------------------------------------------- CPU threads
def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(cores: int | None = None, load: float | None = None) -> int:
    """Threads for torch's CPU kernels when none are asked for: the cores that the 1-minute load
    average says are free, at least 1 (``OMP_NUM_THREADS``, when set, wins).

    torch starts one OpenMP thread per core; when other processes keep those cores busy, its
    threads wait for each other and a run becomes many times slower than with a single thread
    (``docs/benchmarks.md``, "CPU threads"). ``cores`` and ``load`` default to this machine's.

    >>> default_threads(cores=2, load=1.7), default_threads(cores=2, load=0.1), default_threads(cores=16, load=3.0)
    (1, 2, 13)
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if cores is None and load is None and env.isdigit() and int(env) > 0:
        return int(env)
    cores = available_cores() if cores is None else int(cores)
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average on this platform: assume idle
            load = 0.0
    return max(1, min(cores, math.floor(cores - load + 0.5)))


def configure_threads(threads: int | None = None) -> int:
    """Set torch's CPU thread count (``None``: :func:`default_threads`) and return it.

    Raises:
        ValueError: ``threads`` is not a positive integer.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    import torch

    n = default_threads() if threads is None else threads
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
