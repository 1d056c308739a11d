"""The row runner: the seam between a batch job and what it does per row.

A job is a list of :class:`~zero123.batch.manifest.BatchRow` and a :class:`RowTask`. Every backend
runs each row through the same three calls of the task, in the same order:

1. ``prepared = task.prepare(row)``: CPU work without a model (read and preprocess the image).
   It returns plain data (``bytes``, ``str``, numbers), because in Ray it crosses from a CPU
   worker to a GPU worker. A bad row raises (``ValueError``/``OSError``/...): a failed row.
2. ``model = task.load(device, dtype)``: once per worker (one model per GPU).
3. ``files = task.run(model, row, prepared, folder)``: writes the row's files into ``folder``, a
   temporary folder that :class:`RowWorker` renames to ``DIR/<id>/`` once complete (with a
   ``row.json`` describing it), so a row folder is either absent or whole.

``task.settings()`` is the JSON of everything besides the row that the outputs depend on; it is
stored with the job and on every result line, and a job folder refuses a rerun with other
settings. A row's output may depend only on the row and these settings (not on the worker, the
backend or the other rows): :class:`NvsTask` samples each row in its own pipeline call.

``zero123.batch.tasks`` holds the tasks (``nvs`` first; ``reconstruct`` plugs in the same way).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .manifest import BatchRow

#: Written into each finished row folder: the row, its task settings and files.
ROW_FILE = "row.json"


@runtime_checkable
class RowTask(Protocol):
    """What a batch job does per row (see the module docstring for the call order)."""

    #: Short name stored with the job (``"nvs"``, ``"reconstruct"``).
    name: str

    def settings(self) -> dict[str, Any]:
        """JSON of what the outputs depend on besides the row (model, sampler, preprocessing)."""
        ...

    def prepare(self, row: BatchRow) -> dict[str, Any]:
        """CPU stage for ``row``: plain data for :meth:`run`; raises for a bad row."""
        ...

    def load(self, device, dtype) -> Any:
        """The model(s) of one worker on ``device`` (a ``torch.device``) in ``dtype``."""
        ...

    def run(self, model: Any, row: BatchRow, prepared: dict[str, Any], folder: Path) -> list[str]:
        """Write the row's outputs into ``folder``; return their names relative to ``folder``."""
        ...


@dataclass
class RowResult:
    """The outcome of one row: one line of ``results.jsonl``.

    Attributes:
        row: the row.
        status: ``"ok"`` or ``"failed"``.
        files: the row's files relative to the job folder (``"<id>/view_00_....png"``).
        task: the task name; settings: the task's settings.
        error: why it failed (one line), else ``None``.
        seconds: time spent on the row by its worker (0 for rows recorded from a previous run).
        device, dtype: where it ran.
        finished_at: Unix time the result was made.
    """

    row: BatchRow
    status: str
    task: str
    settings: dict[str, Any]
    files: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    device: str | None = None
    dtype: str | None = None
    finished_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        r = self.row
        line = {"id": r.id, "index": r.index, "status": self.status, "files": self.files, **r.key(),
                "task": self.task, "settings": self.settings, "error": self.error,
                "seconds": round(self.seconds, 4), "device": self.device, "dtype": self.dtype,
                "finished_at": round(self.finished_at, 3)}
        if r.meta is not None:
            line["meta"] = r.meta
        return line

    @classmethod
    def from_json(cls, d: dict[str, Any], row: BatchRow | None = None) -> "RowResult":
        """Read a result line (``row``: the manifest's row for it, when known)."""
        if row is None:
            row = BatchRow(id=d["id"], index=int(d.get("index", -1)), image=d.get("image", ""),
                           cameras=tuple(d.get("cameras") or ()), seed=int(d.get("seed") or 0),
                           cond_elevation=d.get("cond_elevation"), meta=d.get("meta"))
        return cls(row=row, status=d["status"], task=d.get("task", ""), settings=d.get("settings") or {},
                   files=list(d.get("files") or []), error=d.get("error"), seconds=float(d.get("seconds") or 0.0),
                   device=d.get("device"), dtype=d.get("dtype"), finished_at=float(d.get("finished_at") or 0.0))


@dataclass
class PreparedRow:
    """A row after the CPU stage: ``data`` for the task, or the ``error`` that makes it a failed row."""

    row: BatchRow
    data: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0


def error_line(e: BaseException) -> str:
    """An exception as one line: ``"TypeName: message"`` (the message's first line only)."""
    text = " ".join(str(e).split()) or "(no message)"
    if isinstance(e, FileNotFoundError) and e.filename and str(e.filename) not in text:
        text = f"{text}: {e.filename}"
    return f"{type(e).__name__}: {text}"


def prepare_row(task: RowTask, row: BatchRow) -> PreparedRow:
    """Step 1 for one row; never raises for a bad row (the error is kept)."""
    t0 = time.perf_counter()
    if row.error is not None:
        return PreparedRow(row, error=row.error)
    try:
        return PreparedRow(row, data=task.prepare(row), seconds=time.perf_counter() - t0)
    except Exception as e:  # a bad image can raise anything from a decoder
        return PreparedRow(row, error=error_line(e), seconds=time.perf_counter() - t0)


def failed_result(task: RowTask, prepared: PreparedRow) -> RowResult:
    """The result of a row that failed before reaching a worker (a bad manifest row or image)."""
    return RowResult(row=prepared.row, status="failed", task=task.name, settings=task.settings(),
                     error=prepared.error, seconds=prepared.seconds, finished_at=time.time())


class RowWorker:
    """One worker: a model loaded once (``task.load``), then one call per prepared row.

    Args:
        task: the job's task.
        out_dir: the job folder; row ``r`` is written to ``out_dir/r.id``.
        device, dtype: as :func:`zero123.loading.load_pipeline` takes them (``"auto"`` resolves on
            the worker, e.g. to the GPU Ray gave it).
        threads: torch CPU threads of this worker (``None``: leave torch's setting). CPU outputs
            are bit-identical across workers and backends only for the same thread count.
    """

    def __init__(self, task: RowTask, out_dir: str | os.PathLike, *, device="auto", dtype="auto", threads: int | None = None):
        from ..devices import configure_threads, dtype_name, resolve_device, resolve_dtype

        if threads is not None:
            configure_threads(threads)
        self.task, self.out_dir = task, Path(out_dir)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self._names = (str(self.device), dtype_name(self.dtype))
        self.settings = task.settings()
        self.model = task.load(self.device, self.dtype)

    def __call__(self, prepared: PreparedRow) -> RowResult:
        """Step 3 and the atomic rename for one row; never raises for a bad row."""
        from ..utils.fileio import atomic_directory

        if prepared.error is not None:
            return failed_result(self.task, prepared)
        row = prepared.row
        t0 = time.perf_counter()
        files, error = [], None
        try:
            with atomic_directory(self.out_dir / row.id, overwrite=True) as tmp:
                names = self.task.run(self.model, row, prepared.data or {}, tmp)
                files = [f"{row.id}/{n}" for n in (*names, ROW_FILE)]
                _write_row_file(tmp / ROW_FILE, row, self.task.name, self.settings, files)
        except Exception as e:  # noqa: BLE001  (one row's failure, e.g. CUDA OOM, must not stop the job)
            files, error = [], error_line(e)
        return RowResult(row=row, status="ok" if error is None else "failed", task=self.task.name,
                         settings=self.settings, files=files, error=error,
                         seconds=prepared.seconds + time.perf_counter() - t0,
                         device=self._names[0], dtype=self._names[1], finished_at=time.time())


def _write_row_file(path: Path, row: BatchRow, task: str, settings: dict, files: list[str]) -> None:
    from ..utils.fileio import atomic_write

    with atomic_write(path, "w") as f:
        json.dump({"id": row.id, **row.key(), "task": task, "settings": settings, "files": files}, f, indent=1)


def read_row_file(folder: Path) -> dict[str, Any] | None:
    """A finished row folder's ``row.json`` (``None`` when missing or unreadable)."""
    try:
        return json.loads((folder / ROW_FILE).read_text())
    except (OSError, ValueError):
        return None
