"""Atomic writes: a reader never sees a half-written file or folder.

Everything is written to a temporary sibling first (same filesystem), flushed, then renamed into
place with :func:`os.replace`, which is atomic on POSIX. On any exception the temporary is removed
and the previous content, if any, stays intact.

Permissions follow the process umask like an ordinary ``open``/``mkdir`` (files ``0o666 & ~umask``,
folders ``0o777 & ~umask``), not the private ``0o600``/``0o700`` of the temporary they start as.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def current_umask() -> int:
    """The process umask (read from ``/proc`` where possible, so no other thread sees it change)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _replaced_on_success(path: Path, *, keep_suffix: bool) -> Iterator[Path]:
    """Create an empty temporary file next to ``path`` and yield its path; rename it onto ``path``
    when the block succeeds, delete it when the block raises. ``keep_suffix`` names it
    ``.<stem>.XXXX.tmp<suffix>`` (for writers that look at the extension), else ``.<name>.XXXX.tmp``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep_suffix:
        prefix, suffix = f".{path.stem}.", f".tmp{path.suffix}"
    else:
        prefix, suffix = f".{path.name}.", ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success flush, fsync and rename it onto ``path``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_write(p, "w") as f:
    ...     _ = f.write("hi")
    >>> p.read_text()
    'hi'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    with _replaced_on_success(Path(path), keep_suffix=False) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path next to ``path`` (same suffix, so writers that look at the
    extension work); rename it onto ``path`` when the block succeeds."""
    with _replaced_on_success(Path(path), keep_suffix=True) as tmp:
        yield tmp


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; rename it to ``path`` when the block succeeds.

    With ``overwrite=True`` an existing ``path`` is replaced (moved aside, then deleted) only after
    the new content is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~current_umask())
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_save_image(image, path: str | os.PathLike, **save_kwargs) -> Path:
    """Save a PIL image atomically; the format follows ``path``'s extension."""
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format=_pil_format(path), **save_kwargs)
    return path


def _pil_format(path: Path) -> str:
    ext = path.suffix.lower()
    return {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(ext, "PNG")
