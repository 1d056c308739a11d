"""Known checkpoint names -> where the weights live (docs/conventions.md, Checkpoint formats).

A name resolves to a local path: an existing path is used as is; a known name or repository id is
looked up in the local Hugging Face cache first; only when it is absent there and downloads are
allowed is the hub asked. If that fails, one error says where the weights live, how big they are,
their licence and how to pass a local path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..camera import CameraEmbedding


@dataclass(frozen=True)
class KnownCheckpoint:
    """A published checkpoint: ``repo_id`` (+ ``filename`` for a single file, else a folder)."""

    repo_id: str
    filename: str | None
    size: str
    licence: str
    camera_embedding: CameraEmbedding
    layout: str  # "ldm", "diffusers_a" or "diffusers_b"

    @property
    def url(self) -> str:
        base = f"https://huggingface.co/{self.repo_id}"
        return f"{base}/blob/main/{self.filename}" if self.filename else base


_COLUMBIA = "cvlab/zero123-weights"
_MIT = "MIT (Zero-1-to-3 release, cvlab-columbia/zero123)"
_STABLE = "Stability AI Non-Commercial Research Community License (non-commercial use only)"

KNOWN: dict[str, KnownCheckpoint] = {
    # original Lightning files (docs/conventions.md, Checkpoint formats)
    "zero123-105000": KnownCheckpoint(_COLUMBIA, "105000.ckpt", "about 15.5 GB", _MIT, "relative_radius", "ldm"),
    "zero123-165000": KnownCheckpoint(_COLUMBIA, "165000.ckpt", "about 15.5 GB", _MIT, "relative_radius", "ldm"),
    "zero123-230000": KnownCheckpoint(_COLUMBIA, "230000.ckpt", "about 15.5 GB", _MIT, "relative_radius", "ldm"),
    "zero123-300000": KnownCheckpoint(_COLUMBIA, "300000.ckpt", "about 15.5 GB", _MIT, "relative_radius", "ldm"),
    "zero123-xl": KnownCheckpoint(_COLUMBIA, "zero123-xl.ckpt", "about 15.5 GB", _MIT, "relative_radius", "ldm"),
    "stable-zero123": KnownCheckpoint(
        "stabilityai/stable-zero123", "stable_zero123.ckpt", "about 8.6 GB", _STABLE, "cond_polar", "ldm"
    ),
    # diffusers layout A (docs/conventions.md, Checkpoint formats)
    "kxic/zero123-105000": KnownCheckpoint("kxic/zero123-105000", None, "about 5 GB", _MIT, "relative_radius", "diffusers_a"),
    "kxic/zero123-165000": KnownCheckpoint("kxic/zero123-165000", None, "about 5 GB", _MIT, "relative_radius", "diffusers_a"),
    "kxic/zero123-xl": KnownCheckpoint("kxic/zero123-xl", None, "about 5 GB", _MIT, "relative_radius", "diffusers_a"),
    "kxic/stable-zero123": KnownCheckpoint("kxic/stable-zero123", None, "about 5 GB", _STABLE, "cond_polar", "diffusers_a"),
    # diffusers layout B (docs/conventions.md, Checkpoint formats)
    "bennyguo/zero123-diffusers": KnownCheckpoint(
        "bennyguo/zero123-diffusers", None, "about 5 GB", _MIT, "relative_radius", "diffusers_b"
    ),
    "bennyguo/zero123-xl-diffusers": KnownCheckpoint(
        "bennyguo/zero123-xl-diffusers", None, "about 5 GB", _MIT, "relative_radius", "diffusers_b"
    ),
    "ashawkey/zero123-xl-diffusers": KnownCheckpoint(
        "ashawkey/zero123-xl-diffusers", None, "about 5 GB", _MIT, "relative_radius", "diffusers_b"
    ),
    "ashawkey/stable-zero123-diffusers": KnownCheckpoint(
        "ashawkey/stable-zero123-diffusers", None, "about 5 GB", _STABLE, "cond_polar", "diffusers_b"
    ),
}
#: Other spellings of the same checkpoints.
ALIASES: dict[str, str] = {
    "cvlab-columbia/zero123-xl": "zero123-xl",
    "cvlab/zero123-xl": "zero123-xl",
    "stabilityai/stable-zero123": "stable-zero123",
    "zero123": "zero123-105000",
    "105000": "zero123-105000",
    "165000": "zero123-165000",
}


def lookup(name: str) -> KnownCheckpoint | None:
    """The registry entry for ``name`` (a short name, alias or repository id), or None."""
    key = ALIASES.get(name, name)
    return KNOWN.get(key)


def infer_camera_embedding(name_or_path: str) -> CameraEmbedding | None:
    """Camera embedding implied by a known name or an unambiguous file/folder name, else None."""
    entry = lookup(name_or_path)
    if entry is not None:
        return entry.camera_embedding
    base = Path(str(name_or_path)).name.lower().replace("_", "-")
    if "stable-zero123" in base or "stablezero123" in base:
        return "cond_polar"
    return None


def _missing_error(name: str, entry: KnownCheckpoint | None, cause: BaseException | None) -> FileNotFoundError:
    why = f" ({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''})" if cause else ""
    if entry is None:
        known = ", ".join(sorted(KNOWN) + sorted(ALIASES))
        return FileNotFoundError(
            f"model {name!r} is not a local path, not in the Hugging Face cache and not a known name{why}. "
            f"Known names: {known}. Pass a local .ckpt/.safetensors file or a diffusers folder."
        )
    what = f"file {entry.filename!r} of " if entry.filename else ""
    example = f"/path/to/{entry.filename}" if entry.filename else f"/path/to/{entry.repo_id.split('/')[-1]}"
    # a Lightning .ckpt holds pickled callbacks: loading it needs the explicit opt-in
    pickled = bool(entry.filename) and entry.filename.endswith(".ckpt")
    py_extra, cli_extra = (", trust_pickle=True", " --trust-pickle") if pickled else ("", "")
    return FileNotFoundError(
        f"model {name!r}: weights not found locally and could not be downloaded{why}. They live at "
        f"{entry.url} ({what}Hugging Face repository {entry.repo_id!r}, {entry.size}; licence: {entry.licence}). "
        f"Download them yourself and pass the local path, e.g. Zero123Pipeline.from_pretrained({example!r}{py_extra}) "
        f"or `zero123 convert {example} -o OUT{cli_extra}`"
        + (" (only for files you trust: unpickling can run code)." if pickled else ".")
    )


def _hub_unreachable(timeout: float = 3.0) -> OSError | None:
    """Why the Hugging Face Hub cannot be reached (``None`` if a TCP connection opens).

    Asked once before a download so that an offline machine fails in about a second instead of
    after the hub client's five retries with back-off. Skipped (``None``) behind a proxy, where only
    the proxy knows the way.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=timeout).close()
    except OSError as e:
        return OSError(f"cannot reach {url.hostname}: {e}")
    return None


def resolve(
    name: str | os.PathLike, *, local_files_only: bool | None = None, cache_dir: str | os.PathLike | None = None
) -> Path:
    """Local path of ``name``: an existing path, ``"bundled"`` (the model shipped in the package),
    or a known name / repo id from the HF cache (downloaded when allowed).

    ``local_files_only`` defaults to the ``HF_HUB_OFFLINE`` setting.

    Raises:
        FileNotFoundError: with where the weights live, their size and licence.
    """
    from huggingface_hub import constants, hf_hub_download, snapshot_download, try_to_load_from_cache

    from ..assets import BUNDLED_MODEL_NAME, bundled_model_dir

    path = Path(name)
    if path.exists():
        return path
    name = str(name)
    if name == BUNDLED_MODEL_NAME:
        return bundled_model_dir()
    if local_files_only is None:
        local_files_only = bool(constants.HF_HUB_OFFLINE)
    entry = lookup(name)
    repo_id = entry.repo_id if entry else name
    filename = entry.filename if entry else None
    if entry is None and (name.count("/") != 1 or name.startswith((".", "/", "~")) or Path(name).suffix):
        if name.startswith((".", "/", "~")) or Path(name).suffix or os.sep in name:
            raise FileNotFoundError(f"model: no such file or folder: {name!r}")
        raise _missing_error(name, None, None)
    # 1. Local Hugging Face cache.
    if filename:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
        if isinstance(cached, str):
            return Path(cached)
    else:
        try:
            return Path(snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True))
        except Exception:  # LocalEntryNotFoundError and friends
            pass
    if local_files_only:
        raise _missing_error(name, entry, None)
    # 2. Download (the network may be unreachable: find out once, quickly).
    offline = _hub_unreachable()
    if offline is not None:
        raise _missing_error(name, entry, offline)
    try:
        if filename:
            return Path(hf_hub_download(repo_id, filename, cache_dir=cache_dir))
        return Path(snapshot_download(repo_id, cache_dir=cache_dir))
    except Exception as e:
        raise _missing_error(name, entry, e) from None
