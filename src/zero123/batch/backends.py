"""Where a batch job's rows run: one process, ``accelerate launch`` processes, or a Ray cluster.

Every backend sends each row through the same :func:`~zero123.batch.runner.prepare_row` and
:class:`~zero123.batch.runner.RowWorker` calls, so a row's files do not depend on the backend.

* :class:`LocalBackend`: this process, one row after another (all views of a row in one batched
  pipeline call).
* :class:`AccelerateBackend`: the same command started by ``accelerate launch`` on N processes
  (one GPU each); process ``k`` takes every N-th row of the job, appends to its own results part,
  and the parts are merged in manifest order at the end.
* :class:`RayBackend`: Ray Data; rows are read into a dataset, images prepared in a CPU ``map``
  stage, and views generated in ``map_batches`` by an actor pool with one model per worker
  (``num_gpus=gpus_per_worker`` each). Actors write the row folders (atomically); the driver
  appends the results.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .manifest import BatchRow
from .runner import PreparedRow, RowResult, RowTask, RowWorker, error_line, failed_result, prepare_row

BACKEND_NAMES: tuple[str, ...] = ("local", "accelerate", "ray")


class Backend(Protocol):
    """What :func:`zero123.batch.run_batch` needs from a backend."""

    name: str
    #: the dtype the workers load the model in, as the user gave it (stored with the job)
    dtype: str

    def processes(self) -> tuple[int, int]:
        """``(index, count)`` of this process among the processes that share the job."""
        ...

    def run(self, task: RowTask, rows: Sequence[BatchRow], out: Path) -> Iterator[RowResult]:
        """Run ``rows`` (all runnable: no manifest error) and yield each result as it is made."""
        ...

    def gather(self, counts: dict[str, Any]) -> list[dict[str, Any]]:
        """Every process's ``counts`` once all have finished (one process: ``[counts]``)."""
        ...


def _check_threads(threads: int | None) -> None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")


@dataclass
class LocalBackend:
    """This process: the model is loaded once (when the first row needs it), rows run in order.

    Attributes:
        device, dtype: as :func:`zero123.loading.load_pipeline` takes them.
        threads: torch CPU threads (``None``: torch's default).
    """

    device: str = "auto"
    dtype: str = "auto"
    threads: int | None = None
    name: str = "local"

    def __post_init__(self):
        from ..devices import resolve_device, resolve_dtype

        _check_threads(self.threads)
        resolve_dtype(self.dtype, resolve_device(self.device))  # a bad value fails before any work

    def processes(self) -> tuple[int, int]:
        return (0, 1)

    def run(self, task: RowTask, rows: Sequence[BatchRow], out: Path) -> Iterator[RowResult]:
        worker: RowWorker | None = None
        for row in rows:
            prepared = prepare_row(task, row)
            if prepared.error is not None:
                yield failed_result(task, prepared)
                continue
            if worker is None:  # the model is loaded on the first row that needs it
                worker = RowWorker(task, out, device=self._worker_device(), dtype=self.dtype, threads=self.threads)
            yield worker(prepared)

    def _worker_device(self):
        return self.device

    def gather(self, counts: dict[str, Any]) -> list[dict[str, Any]]:
        return [counts]


class AccelerateBackend(LocalBackend):
    """One of the processes ``accelerate launch`` started (one per GPU; on CPUs
    ``accelerate launch --multi_gpu --num_processes N`` starts N CPU processes, gloo).
    Process ``k`` of ``N`` runs every N-th row; ``device="auto"`` or ``"cuda"`` is the process's
    own device (``cuda:<local rank>``)."""

    def __init__(self, device: str = "auto", dtype: str = "auto", threads: int | None = None):
        from accelerate import PartialState

        from ..devices import resolve_device

        cpu = resolve_device(device).type == "cpu"
        self._state = PartialState(cpu=cpu)
        super().__init__(device=device, dtype=dtype, threads=threads, name="accelerate")

    def processes(self) -> tuple[int, int]:
        return (self._state.process_index, self._state.num_processes)

    def _worker_device(self):
        return self._state.device if str(self.device).strip().lower() in ("auto", "cuda") else self.device

    def gather(self, counts: dict[str, Any]) -> list[dict[str, Any]]:
        from accelerate.utils import gather_object

        if self._state.num_processes == 1:
            return [counts]
        everyone = gather_object([counts])
        self._state.wait_for_everyone()
        return list(everyone)


def launcher_world_size() -> int:
    """Processes started by ``accelerate launch``/``torchrun`` for this job (1 outside a launcher)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


# ---------------------------------------------------------------------- Ray
@dataclass
class RayBackend:
    """Ray Data over a cluster (or a local one).

    Attributes:
        address: ``None`` starts a local Ray (or uses the one this process already joined);
            ``"auto"`` joins the running cluster; ``"ray://host:10001"`` or ``"host:6379"`` a given one.
        workers: actors in the generation pool, each holding one model.
        gpus_per_worker: GPUs per actor (``None``: 1 when the cluster has GPUs, else 0; 0.5 puts
            two actors on each GPU).
        cpus_per_worker: CPUs reserved per actor.
        prepare_cpus: CPUs per task of the preprocessing ``map`` stage.
        batch_size: rows per ``map_batches`` call of an actor.
        device, dtype, threads: as :class:`LocalBackend`, resolved on each actor.
    """

    address: str | None = None
    workers: int = 1
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0
    prepare_cpus: float = 1.0
    batch_size: int = 1
    device: str = "auto"
    dtype: str = "auto"
    threads: int | None = None
    name: str = "ray"

    def __post_init__(self):
        _check_threads(self.threads)
        for attr in ("workers", "batch_size"):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{attr} must be a positive integer, got {v!r}")
        for attr in ("gpus_per_worker", "cpus_per_worker", "prepare_cpus"):
            v = getattr(self, attr)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f"{attr} must be a number >= 0, got {v!r}")

    def processes(self) -> tuple[int, int]:
        return (0, 1)

    def gather(self, counts: dict[str, Any]) -> list[dict[str, Any]]:
        return [counts]

    def run(self, task: RowTask, rows: Sequence[BatchRow], out: Path) -> Iterator[RowResult]:
        ray = _import_ray()
        started = False
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            started = True
        try:
            yield from self._run(ray, task, rows, out)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, task: RowTask, rows: Sequence[BatchRow], out: Path) -> Iterator[RowResult]:
        import ray.data

        # 1. Resources: a request the cluster cannot meet would wait forever
        gpus = self._gpus(ray.cluster_resources())
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        # 2. The dataset: one record per row (the row as JSON: rows differ in shape)
        ds = ray.data.from_items([{"id": r.id, "row": json.dumps(r.to_json())} for r in rows])
        # 3. CPU stage: read and preprocess each image
        ds = ds.map(_PrepareStage(task), num_cpus=self.prepare_cpus)
        # 4. Generation: an actor pool, one model per actor; actors write the row folders
        ds = ds.map_batches(
            _GenerateStage,
            fn_constructor_kwargs={"task": task, "out_dir": str(out), "device": self.device,
                                   "dtype": self.dtype, "threads": self.threads},
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_gpus=gpus, num_cpus=self.cpus_per_worker, batch_size=self.batch_size,
        )
        # 5. The driver receives each result as its batch finishes
        try:
            for record in ds.iter_rows():
                if record["fatal"]:
                    raise RuntimeError(f"a Ray worker could not load the model: {record['fatal']}")
                yield RowResult.from_json(json.loads(record["result"]), _row_of(record["row"]))
        except RuntimeError:
            raise
        except Exception as e:  # anything else Ray reports (a lost node, ...)
            raise RuntimeError(f"the Ray job failed: {_last_line(e)}") from None

    def _gpus(self, resources: dict[str, float]) -> float:
        have_gpus, have_cpus = resources.get("GPU", 0.0), resources.get("CPU", 0.0)
        gpus = (1.0 if have_gpus > 0 else 0.0) if self.gpus_per_worker is None else float(self.gpus_per_worker)
        if gpus > 0 and self.workers * gpus > have_gpus:
            raise ValueError(f"--workers {self.workers} x --gpus-per-worker {gpus:g} needs {self.workers * gpus:g} GPUs; "
                             f"the Ray cluster has {have_gpus:g} (use fewer workers, or --gpus-per-worker 0 for CPUs)")
        need = self.workers * self.cpus_per_worker + self.prepare_cpus
        if need > have_cpus:
            raise ValueError(f"--workers {self.workers} x --cpus-per-worker {self.cpus_per_worker:g} plus "
                             f"{self.prepare_cpus:g} CPU for the preprocessing stage needs {need:g} CPUs; the Ray "
                             f"cluster has {have_cpus:g} (lower --cpus-per-worker, e.g. 0.5, or --workers)")
        return gpus


class _PrepareStage:
    """The Ray ``map`` function of step 3 (a plain picklable callable, run as Ray tasks)."""

    def __init__(self, task: RowTask):
        self.task = task

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        prepared = prepare_row(self.task, _row_of(record["row"]))
        return {"id": record["id"], "row": record["row"], "seconds": prepared.seconds,
                "error": prepared.error or "", "prepared": pickle.dumps(prepared.data)}


class _GenerateStage:
    """The Ray ``map_batches`` actor of step 4: one :class:`RowWorker` (one model) per actor."""

    def __init__(self, task: RowTask, out_dir: str, device: str, dtype: str, threads: int | None):
        self.task = task
        self.worker: RowWorker | None = None
        self._args = dict(out_dir=out_dir, device=device, dtype=dtype, threads=threads)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        results = []
        for i in range(len(batch["id"])):
            error = str(batch["error"][i]) or None
            prepared = PreparedRow(_row_of(batch["row"][i]), data=None if error else pickle.loads(batch["prepared"][i]),
                                   error=error, seconds=float(batch["seconds"][i]))
            if error is not None:
                results.append(failed_result(self.task, prepared))
                continue
            if self.worker is None:  # the model is loaded on the first row that needs it
                a = self._args
                try:
                    self.worker = RowWorker(self.task, a["out_dir"], device=a["device"], dtype=a["dtype"], threads=a["threads"])
                except Exception as e:  # reported by the driver as the job's error, not as failed rows
                    n = len(batch["id"])
                    return {"id": list(batch["id"]), "row": list(batch["row"]), "result": [""] * n, "fatal": [error_line(e)] * n}
            results.append(self.worker(prepared))
        return {"id": [r.row.id for r in results], "row": list(batch["row"]),
                "result": [json.dumps(r.to_json()) for r in results], "fatal": [""] * len(results)}


def _row_of(text: str) -> BatchRow:
    return BatchRow.from_json(json.loads(text))


def _last_line(e: BaseException) -> str:
    """Ray's errors carry the remote traceback in their text; its last line names the cause."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return (lines[-1] if lines else type(e).__name__)[:500]


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (needs pyarrow: the ray[data] extra)
    except ImportError as e:
        raise ImportError(f"--backend ray needs Ray Data ({e}): pip install 'zero123[ray]'") from None
    return ray
