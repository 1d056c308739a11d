"""Batch jobs: novel views (or another per-row task) for many images, resumable, on one process,
``accelerate launch`` processes or a Ray cluster.

Example (``manifest.jsonl`` as in :mod:`~zero123.batch.manifest`)::

    from zero123.batch import NvsTask, RayBackend, load_rows, run_batch

    summary = run_batch(load_rows("manifest.jsonl"), "out", NvsTask(model="bundled"))
    summary = run_batch(load_rows("manifest.jsonl"), "out", NvsTask(model="bundled"), RayBackend(workers=8))

* :mod:`~zero123.batch.manifest`: rows from a JSON Lines manifest or a folder of images.
* :mod:`~zero123.batch.runner`: the per-row task seam (:class:`RowTask`) and the worker.
* :mod:`~zero123.batch.tasks`: :class:`NvsTask`, :class:`ReconstructTask`.
* :mod:`~zero123.batch.results`: the job folder and ``results.jsonl``.
* :mod:`~zero123.batch.backends`: :class:`LocalBackend`, :class:`AccelerateBackend`, :class:`RayBackend`.
* :mod:`~zero123.batch.job`: :func:`run_batch`.
"""

from .backends import BACKEND_NAMES, AccelerateBackend, Backend, LocalBackend, RayBackend
from .job import BatchSummary, run_batch
from .manifest import BatchRow, RowDefaults, load_rows, read_manifest, rows_from_folder, select_shard
from .results import read_results
from .runner import RowResult, RowTask, RowWorker
from .tasks import TASK_NAMES, NvsTask, ReconstructTask

__all__ = [
    "BACKEND_NAMES", "TASK_NAMES", "AccelerateBackend", "Backend", "BatchRow", "BatchSummary", "LocalBackend",
    "NvsTask", "RayBackend", "ReconstructTask", "RowDefaults", "RowResult", "RowTask", "RowWorker", "load_rows", "read_manifest",
    "read_results", "rows_from_folder", "run_batch", "select_shard",
]
