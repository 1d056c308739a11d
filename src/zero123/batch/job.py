"""``run_batch``: a batch job from rows to a finished, resumable job folder."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends import Backend, LocalBackend
from .manifest import BatchRow, select_shard
from .results import ResultsStore, open_job_folder, remove_stale_temporaries
from .runner import PreparedRow, RowResult, RowTask, failed_result


@dataclass
class BatchSummary:
    """What a job (all its processes together) did in this run.

    Attributes:
        done: rows finished now; skipped: rows finished by an earlier run; failed: id -> error.
        seconds: wall time of the run (the slowest process under ``accelerate``).
        out_dir: the job folder.
    """

    out_dir: Path
    done: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.done + self.skipped + len(self.failed)

    @property
    def ok(self) -> bool:
        """True when no row failed."""
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "done": self.done, "skipped": self.skipped,
                "failed": len(self.failed), "errors": self.failed, "seconds": round(self.seconds, 3)}


def job_settings(task: RowTask, dtype: str) -> dict[str, Any]:
    """What ``batch.json`` stores and a rerun must match: the task, its settings and the dtype."""
    return {"task": task.name, "settings": task.settings(), "dtype": str(dtype)}


def run_batch(
    rows: Sequence[BatchRow],
    out_dir: str | os.PathLike,
    task: RowTask,
    backend: Backend | None = None,
    *,
    shard_index: int = 0,
    num_shards: int = 1,
    on_result: Callable[[RowResult], None] | None = None,
) -> BatchSummary:
    """Run ``task`` over ``rows`` into ``out_dir``: ``out_dir/<id>/`` per row, ``results.jsonl``.

    A rerun with the same rows, task and settings skips finished rows and redoes the rest; a rerun
    with other settings is refused (``ValueError``). Bad rows are failed results, never errors.

    Args:
        rows: from :func:`zero123.batch.load_rows` (bad rows included).
        out_dir: the job folder (created; an existing one must hold this job).
        task: e.g. :class:`zero123.batch.NvsTask`.
        backend: :class:`~zero123.batch.LocalBackend` (default), ``AccelerateBackend`` or ``RayBackend``.
        shard_index, num_shards: run only rows with ``index % num_shards == shard_index`` (job arrays).
        on_result: called with each result of this process as it is recorded (progress).

    Returns:
        :class:`BatchSummary` of the whole job (every ``accelerate`` process returns the same).
    """
    t0 = time.perf_counter()
    backend = backend if backend is not None else LocalBackend()
    # 1. This process's rows: the shard, then this process's share of it
    rank, world = backend.processes()
    mine = select_shard(rows, shard_index, num_shards)[rank::world]
    part = None if num_shards == 1 and world == 1 else f"shard{shard_index:05d}-of-{num_shards:05d}.proc{rank:05d}-of-{world:05d}"

    # 2. The job folder: same settings as before, no leftovers of this process's rows
    settings = job_settings(task, backend.dtype)
    out = open_job_folder(out_dir, settings)
    remove_stale_temporaries(out, (r.id for r in mine))

    # 3. What earlier runs finished; open this process's results file
    store = ResultsStore(out, part)
    finished = store.begin(rows, mine, task.settings())
    done_ids = {r.row.id for r in finished}
    counts: dict[str, Any] = {"done": 0, "skipped": len(finished), "failed": {}}

    def record(result: RowResult) -> None:
        store.append(result)
        if result.ok:
            counts["done"] += 1
        else:
            counts["failed"][result.row.id] = result.error or "failed"
        if on_result is not None:
            on_result(result)

    # 4. Bad manifest rows are failed rows at once; the rest go through the backend
    try:
        todo = []
        for row in mine:
            if row.id in done_ids:
                continue
            if row.error is not None:
                record(failed_result(task, PreparedRow(row, error=row.error)))
            else:
                todo.append(row)
        if todo:
            for result in backend.run(task, todo, out):
                record(result)
    finally:
        store.close()

    # 5. Merge the results in manifest order (under a lock: the last process to merge sees every
    #    finished part), then combine the processes' counts (accelerate: waits for all)
    store.finish(rows)
    counts["seconds"] = time.perf_counter() - t0
    everyone = backend.gather(counts)
    summary = BatchSummary(out_dir=out, seconds=max(c["seconds"] for c in everyone))
    for c in everyone:
        summary.done += c["done"]
        summary.skipped += c["skipped"]
        summary.failed.update(c["failed"])
    return summary
