"""Dataset writer: objects -> the ``views_release`` layout (docs/conventions.md, Dataset layout), resumable, parallel.

For each object (procedural seed or mesh file) a worker draws ``num_views`` cameras and one light
from a generator seeded by ``(seed, object index)`` (so results do not depend on the number of
workers), renders, and writes ``NNN.png`` (RGBA) + ``NNN.npy`` (3x4 float64 world-to-camera,
Blender camera axes) into a temporary folder that is renamed into place when complete
(:func:`zero123.utils.fileio.atomic_directory`): a folder that exists is finished.

``manifest.json`` records the settings, the seed and each object's status (``ok`` / ``failed`` with
the error); ``valid_paths.json`` lists the finished objects in job order. A rerun with the same
settings skips finished objects (and retries failed ones); a rerun with other settings is refused.
Broken meshes are recorded as failed and never abort the run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..utils.fileio import atomic_directory, atomic_write

MANIFEST = "manifest.json"
VALID_PATHS = "valid_paths.json"
FORMAT = "zero123-views-release/1"


@dataclass(frozen=True)
class RenderSettings:
    """What every object of a dataset is rendered with (stored in the manifest)."""

    num_views: int = 12
    image_size: int = 256
    backend: str = "gl"
    direction: str = "cube"
    distance_min: float = 1.5
    distance_max: float = 2.2
    fov_deg: float = 49.13
    max_faces: int = 2_000_000
    #: Procedural objects only (:class:`~zero123.data.objects.ProceduralConfig`): parts per object
    #: and the chance that a part is textured.
    min_parts: int = 3
    max_parts: int = 7
    texture_probability: float = 0.5
    #: Procedural objects only: ``"primitives"`` or ``"objects"`` (:data:`~zero123.data.objects.KINDS`).
    kind: str = "primitives"
    #: Camera elevation band in degrees above the object's equator (the default: the whole sphere).
    elevation_min: float = -90.0
    elevation_max: float = 90.0

    def __post_init__(self):
        if not isinstance(self.num_views, int) or self.num_views < 2:
            raise ValueError(f"num_views must be an integer >= 2 (pairs need two views), got {self.num_views!r}")
        if not isinstance(self.image_size, int) or not 8 <= self.image_size <= 4096:
            raise ValueError(f"image_size must be an integer in [8, 4096], got {self.image_size!r}")
        if self.backend not in ("gl", "torch", "auto"):
            raise ValueError(f"backend must be 'gl', 'torch' or 'auto', got {self.backend!r}")
        if self.direction not in ("cube", "uniform"):
            raise ValueError(f"direction must be 'cube' or 'uniform', got {self.direction!r}")
        if not 0 < self.distance_min <= self.distance_max:
            raise ValueError(f"need 0 < distance_min <= distance_max, got {self.distance_min}, {self.distance_max}")
        if not -90.0 <= self.elevation_min < self.elevation_max <= 90.0:
            raise ValueError(f"need -90 <= elevation_min < elevation_max <= 90 (degrees), got {self.elevation_min}, "
                             f"{self.elevation_max}")
        self.procedural_config()  # checks the part counts and texture probability

    def procedural_config(self):
        """The :class:`~zero123.data.objects.ProceduralConfig` of procedural jobs."""
        from .objects import ProceduralConfig

        return ProceduralConfig(min_parts=self.min_parts, max_parts=self.max_parts,
                                texture_probability=self.texture_probability, kind=self.kind)

    def comparable(self) -> dict:
        """Settings that must match to resume into an existing folder (the backend may change)."""
        d = dataclasses.asdict(self)
        d.pop("backend")
        return d


@dataclass(frozen=True)
class ObjectJob:
    """One object to render: ``kind`` is ``"procedural"`` (``source`` = its seed) or ``"mesh"`` (a path)."""

    name: str
    kind: str
    source: str
    index: int


@dataclass
class WriteReport:
    """Outcome of :func:`render_dataset`."""

    out_dir: Path
    rendered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return 0.0 if self.seconds <= 0 else len(self.rendered) * self._views / self.seconds

    _views: int = 12


# ---------------------------------------------------------------------- jobs
def procedural_jobs(count: int, seed: int) -> list[ObjectJob]:
    """``count`` procedural objects named ``proc_000000 ...``; object i uses seed ``(seed, i)``."""
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"--procedural must be a positive number of objects, got {count!r}")
    return [ObjectJob(f"proc_{i:06d}", "procedural", str(_object_seed(seed, i)), i) for i in range(count)]


def mesh_jobs(paths: Iterable[str | os.PathLike]) -> list[ObjectJob]:
    """One job per mesh file, named by the file stem (made unique with a numeric suffix)."""
    jobs, used = [], set()
    for i, p in enumerate(sorted(str(x) for x in paths)):
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(p).stem) or "mesh"
        name, k = stem, 1
        while name in used:
            name, k = f"{stem}_{k}", k + 1
        used.add(name)
        jobs.append(ObjectJob(name, "mesh", p, i))
    return jobs


def _object_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


# ---------------------------------------------------------------------- one object
def write_views(folder: str | os.PathLike, images: np.ndarray, world_to_cams: np.ndarray) -> None:
    """Write ``NNN.png`` (RGBA) and ``NNN.npy`` (3x4 float64) into an existing folder."""
    folder = Path(folder)
    if len(images) != len(world_to_cams):
        raise ValueError(f"got {len(images)} images for {len(world_to_cams)} cameras")
    for i, (img, m) in enumerate(zip(images, world_to_cams)):
        Image.fromarray(np.asarray(img, np.uint8), "RGBA").save(folder / f"{i:03d}.png", compress_level=1)
        np.save(folder / f"{i:03d}.npy", np.asarray(m, np.float64)[:3])


_RENDERERS: dict = {}


def _renderer(settings: RenderSettings):
    from ..render import create_renderer

    key = (settings.backend, settings.image_size, settings.fov_deg)
    if key not in _RENDERERS:
        _RENDERERS[key] = create_renderer(settings.backend, settings.image_size, settings.fov_deg)
    return _RENDERERS[key]


def load_job_mesh(job: ObjectJob, settings: RenderSettings):
    """The normalised :class:`~zero123.render.RenderMesh` of a job."""
    if job.kind == "procedural":
        from .objects import procedural_object

        return procedural_object(int(job.source), settings.procedural_config())
    from .meshes import load_mesh

    return load_mesh(job.source, max_faces=settings.max_faces)


def render_object(job: ObjectJob, settings: RenderSettings, out_dir: str, seed: int) -> dict:
    """Render one object into ``out_dir/job.name`` (atomically). Never raises for a bad object:
    returns ``{"name", "status": "ok"|"failed", "error", "seconds"}``."""
    from ..render import Light
    from .cameras import sample_world_to_cams

    t0 = time.perf_counter()
    try:
        mesh = load_job_mesh(job, settings)
        rng = np.random.default_rng([int(seed), job.index, 1])
        cams = sample_world_to_cams(rng, settings.num_views, settings.direction,
                                    (settings.distance_min, settings.distance_max),
                                    (settings.elevation_min, settings.elevation_max))
        light = Light.random(rng)
        images = _renderer(settings).render(mesh, cams, light)
        with atomic_directory(Path(out_dir) / job.name, overwrite=True) as tmp:
            write_views(tmp, images, cams)
        return {"name": job.name, "status": "ok", "error": None, "seconds": time.perf_counter() - t0}
    except (ValueError, FileNotFoundError, OSError, RuntimeError, MemoryError) as e:
        return {"name": job.name, "status": "failed", "error": f"{type(e).__name__}: {e}",
                "seconds": time.perf_counter() - t0}
    except Exception as e:  # a mesh library can raise anything on a broken file
        return {"name": job.name, "status": "failed",
                "error": f"{type(e).__name__}: {e} ({traceback.format_exc(limit=1).splitlines()[-1]})",
                "seconds": time.perf_counter() - t0}


def _render_object_star(args):
    return render_object(*args)


# ---------------------------------------------------------------------- the dataset
def render_dataset(out_dir: str | os.PathLike, jobs: list[ObjectJob], settings: RenderSettings = RenderSettings(),
                   *, seed: int = 0, workers: int = 1, ray_address: str | None = None, progress: bool = True,
                   on_result: Callable[[dict], None] | None = None) -> WriteReport:
    """Render ``jobs`` into ``out_dir`` (see the module docstring). Returns a :class:`WriteReport`."""
    # 1. check inputs, read any previous manifest
    if not jobs:
        raise ValueError("no objects to render (the job list is empty)")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError("object names must be unique")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(out, settings, seed)
    _remove_stale_temporaries(out)

    # 2. skip finished objects (their folder exists: folders appear only when complete)
    report = WriteReport(out_dir=out, _views=settings.num_views)
    todo = []
    for j in jobs:
        if (out / j.name).is_dir():
            report.skipped.append(j.name)
            prev = manifest["objects"].get(j.name, {})
            manifest["objects"][j.name] = {**prev, "status": "ok", "kind": j.kind, "source": j.source}
        else:
            todo.append(j)
    _write_manifest(out, manifest, jobs)

    # 3. render, recording each result as it arrives
    t0 = time.perf_counter()
    kinds = {j.name: j for j in jobs}
    last_save = time.perf_counter()
    with _progress(progress, len(todo)) as advance:
        for res in _run(todo, settings, out, seed, workers, ray_address):
            job = kinds[res["name"]]
            entry = {"status": res["status"], "kind": job.kind, "source": job.source,
                     "seconds": round(res["seconds"], 4)}
            if res["error"]:
                entry["error"] = res["error"]
                report.failed[job.name] = res["error"]
            else:
                report.rendered.append(job.name)
            manifest["objects"][job.name] = entry
            if on_result is not None:
                on_result(res)
            advance()
            if time.perf_counter() - last_save > 5.0:
                _write_manifest(out, manifest, jobs)
                last_save = time.perf_counter()
    report.seconds = time.perf_counter() - t0
    _write_manifest(out, manifest, jobs)
    return report


def _run(todo, settings, out, seed, workers, ray_address):
    if not todo:
        return
    if ray_address is not None:
        yield from _run_ray(todo, settings, out, seed, ray_address)
    elif workers == 1:
        for j in todo:
            yield render_object(j, settings, str(out), seed)
    else:
        import multiprocessing as mp

        # spawn: a worker must not inherit an EGL context or torch threads from the parent
        with mp.get_context("spawn").Pool(workers) as pool:
            yield from pool.imap_unordered(_render_object_star, [(j, settings, str(out), seed) for j in todo])


def _run_ray(todo, settings, out, seed, address: str):
    try:
        import ray
    except ImportError as e:
        raise RuntimeError("--ray needs Ray: pip install 'zero123[ray]'") from e
    started = False
    if not ray.is_initialized():
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        elif address == "auto":
            ray.init(include_dashboard=False, log_to_driver=False)  # an existing cluster, else a local one
        else:
            ray.init(address=address, log_to_driver=False)
        started = True
    try:
        task = ray.remote(num_cpus=1)(render_object)
        pending = [task.remote(j, settings, str(out), seed) for j in todo]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield ray.get(ref)
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------------- manifest
def _read_manifest(out: Path, settings: RenderSettings, seed: int) -> dict:
    path = out / MANIFEST
    fresh = {"format": FORMAT, "seed": int(seed), "settings": dataclasses.asdict(settings), "objects": {}}
    if not path.is_file():
        if any(p for p in out.iterdir() if not p.name.startswith(".")):
            raise ValueError(f"--out {str(out)!r} is not empty and has no {MANIFEST}; choose an empty or new folder")
        return fresh
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); remove it or choose another --out") from e
    # settings added after a folder was written read as their defaults
    old_settings = {**dataclasses.asdict(RenderSettings()), **old.get("settings", {})}
    old_settings.pop("backend", None)
    if old.get("seed") != int(seed) or old_settings != settings.comparable():
        diff = {k: (old_settings.get(k), v) for k, v in settings.comparable().items() if old_settings.get(k) != v}
        if old.get("seed") != int(seed):
            diff["seed"] = (old.get("seed"), int(seed))
        raise ValueError(f"--out {str(out)!r} was rendered with other settings (old, new): {diff}; "
                         "use the same settings to resume, or another --out")
    fresh["objects"] = dict(old.get("objects", {}))
    return fresh


def _write_manifest(out: Path, manifest: dict, jobs: list[ObjectJob]) -> None:
    objects = manifest["objects"]
    order = {j.name: j.index for j in jobs}
    valid = sorted((n for n, e in objects.items() if e.get("status") == "ok" and (out / n).is_dir()),
                   key=lambda n: (order.get(n, len(order)), n))
    manifest["counts"] = {"ok": len(valid), "failed": sum(e.get("status") == "failed" for e in objects.values())}
    with atomic_write(out / MANIFEST, "w") as f:
        json.dump(manifest, f, indent=1)
    with atomic_write(out / VALID_PATHS, "w") as f:
        json.dump(valid, f)


def _remove_stale_temporaries(out: Path) -> None:
    """Folders ``.<name>.*.tmp`` left by an interrupted run are incomplete: remove them."""
    for p in out.glob(".*.tmp"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


class _progress:
    """A rich progress bar showing objects/s (or nothing when disabled)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._p = Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[rate]} objects/s"), TimeRemainingColumn())
        self._p.__enter__()
        self._task = self._p.add_task("render", total=self.total, rate="-")
        self._t0 = time.perf_counter()
        self._n = 0

        def advance():
            self._n += 1
            rate = self._n / max(time.perf_counter() - self._t0, 1e-9)
            self._p.update(self._task, advance=1, rate=f"{rate:.1f}")

        return advance

    def __exit__(self, *exc):
        if self.enabled:
            self._p.__exit__(*exc)
        return False
