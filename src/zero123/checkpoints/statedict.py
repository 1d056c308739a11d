"""Reading checkpoint files lazily and safely (docs/conventions.md, Checkpoint formats).

* ``.safetensors``: opened with :func:`safetensors.safe_open`; a tensor is read when asked for.
* ``.ckpt`` / ``.pt`` / ``.pth`` / ``.bin``: :func:`torch.load` with ``mmap=True`` (the file is
  mapped, not read, so a 15.5 GB Lightning file does not need 15.5 GB of RAM) and
  ``weights_only=True``. A file that needs real unpickling (Lightning pickles its callbacks) loads
  only when the caller opts in with ``trust_pickle=True``; classes that cannot be imported are
  replaced by inert stand-ins, so neither Lightning nor the original ``ldm`` package is needed.

:class:`StateDict` records which keys were read, so the converter can report unconsumed keys.
"""

from __future__ import annotations

import os
import pickle
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
SAFETENSORS_SUFFIXES = (".safetensors",)


class StateDict(Mapping):
    """A read-only ``name -> tensor`` mapping over a checkpoint that remembers which keys were read.

    ``shape(key)`` answers without reading the tensor (safetensors) or touching its pages (mmap).
    """

    def __init__(self, tensors: Mapping[str, Any] | None = None, *, safetensors_path: Path | None = None):
        self._tensors = tensors
        self._safe = None
        if safetensors_path is not None:
            from safetensors import safe_open

            self._safe = safe_open(str(safetensors_path), framework="pt")
            self._keys = list(self._safe.keys())
        else:
            self._keys = [k for k, v in tensors.items() if isinstance(v, torch.Tensor)]
        self._key_set = set(self._keys)
        self.accessed: set[str] = set()
        self.metadata: dict[str, str] = dict(self._safe.metadata() or {}) if self._safe is not None else {}

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._key_set:
            raise KeyError(key)
        self.accessed.add(key)
        if self._safe is not None:
            return self._safe.get_tensor(key)
        return self._tensors[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._key_set

    def keys(self):  # a list, so callers may mutate nothing while iterating
        return list(self._keys)

    def shape(self, key: str) -> tuple[int, ...]:
        """Shape of ``key`` without loading its data."""
        if self._safe is not None:
            return tuple(self._safe.get_slice(key).get_shape())
        return tuple(self._tensors[key].shape)


# ----------------------------------------------------------------------------------------------
# trusted unpickling without the original packages


class _Stub:
    """Stand-in for a class that is not importable here (e.g. a Lightning callback)."""

    def __init__(self, *args, **kwargs):
        self._args = args

    def __setstate__(self, state):
        self._state = state

    def __call__(self, *args, **kwargs):  # stubs used as reduce functions
        return _Stub(*args)


class _TolerantUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (_Stub,), {"__module__": f"zero123.stub.{module}"})


_tolerant_pickle = types.ModuleType("zero123_tolerant_pickle")
_tolerant_pickle.Unpickler = _TolerantUnpickler
_tolerant_pickle.load = lambda f, **kw: _TolerantUnpickler(f, **kw).load()
_tolerant_pickle.__name__ = "pickle"


def _torch_load(path: Path, *, weights_only: bool) -> Any:
    kwargs: dict[str, Any] = dict(map_location="cpu", weights_only=weights_only)
    if not weights_only:
        kwargs["pickle_module"] = _tolerant_pickle
    try:
        return torch.load(path, mmap=True, **kwargs)
    except RuntimeError as e:
        if "mmap" not in str(e) and "zip" not in str(e).lower():
            raise
        # legacy (pre-zip) serialisation cannot be memory-mapped: read it whole
        if "mmap" in str(e):
            return torch.load(path, **kwargs)
        raise


def _unpickling_reason(e: BaseException) -> str:
    """The informative line of torch's long weights-only error (``Unsupported global: ...``)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    useful = [line for line in lines if "Unsupported" in line]
    return (useful or lines or [type(e).__name__])[0]


def read_checkpoint(path: str | os.PathLike, *, trust_pickle: bool = False) -> tuple[StateDict, dict[str, Any]]:
    """Open a single-file checkpoint lazily.

    Returns ``(state_dict, extras)``: the tensors (the ``state_dict`` entry of a Lightning file, or
    the top level) and the other top-level entries of a pickle file (``global_step`` ...).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        PermissionError: ``path`` is not readable.
        ValueError: the file is truncated or corrupt, not a checkpoint, or needs ``trust_pickle``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint path {str(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"checkpoint path {str(path)!r} is a folder, expected a file")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"checkpoint path {str(path)!r} is not readable (check its permissions)")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        try:
            return StateDict(safetensors_path=path), {}
        except Exception as e:  # safetensors raises its own SafetensorError for bad headers
            raise ValueError(
                f"checkpoint {str(path)!r} is not a readable safetensors file (truncated or corrupt?): {e}"
            ) from None
    if suffix not in PICKLE_SUFFIXES:
        raise ValueError(
            f"checkpoint {str(path)!r}: unknown file format {suffix!r}; expected one of "
            f"{SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES} or a diffusers folder"
        )
    with open(path, "rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise ValueError(
            f"checkpoint {str(path)!r} is not a PyTorch checkpoint: it is neither a torch.save zip archive nor a "
            f"pickle (first bytes {head!r}); the file is corrupt, truncated at the start, or another kind of file"
        )
    try:
        obj = _torch_load(path, weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" not in str(e) and "global" not in str(e):  # bad opcodes: damaged data, not a pickled class
            raise ValueError(f"checkpoint {str(path)!r} is corrupt: its data cannot be read ({_unpickling_reason(e)})") from None
        if not trust_pickle:
            first = _unpickling_reason(e)
            raise ValueError(
                f"checkpoint {str(path)!r} contains pickled Python objects besides tensors (a Lightning "
                f"file stores its callbacks this way), so it cannot be loaded with weights_only=True "
                f"({first}). Unpickling can run arbitrary code: if you trust the file's source, pass "
                f"trust_pickle=True (CLI: --trust-pickle), or convert it once with `zero123 convert`."
            ) from None
        try:
            obj = _torch_load(path, weights_only=False)
        except Exception as e2:
            raise ValueError(f"checkpoint {str(path)!r} could not be unpickled: {type(e2).__name__}: {e2}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise ValueError(
            f"checkpoint {str(path)!r} is truncated or corrupt ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint {str(path)!r} holds a {type(obj).__name__}, expected a dict of tensors")
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        extras = {k: v for k, v in obj.items() if k != "state_dict"}
        return StateDict(obj["state_dict"]), extras
    return StateDict(obj), {k: v for k, v in obj.items() if not isinstance(v, torch.Tensor)}
