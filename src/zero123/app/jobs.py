"""What the web app runs on the model, without gradio: the image-to-3D routes, one model job at a
time with per-session cancelling, and the job folders that are cleaned up.

Thin over the library: novel views are :func:`zero123.nvs.generate_views`, 3D is a route from
:data:`ROUTES` (each a :func:`zero123.threed.reconstruct.reconstruct_from_image`-like function)
then :func:`zero123.threed.export.write_reconstruction`.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: ``progress(stage, done, total)`` of a 3D route (stage: "generate", "fit", "mesh", "texture").
StageProgress = Callable[[str, int, int], None]


class JobCancelled(Exception):
    """Raised inside a model job when its session pressed Stop."""


@dataclass(frozen=True)
class Route:
    """An image-to-3D route of the 3D tab.

    Attributes:
        name: the stable name (the ``route`` argument of the ``reconstruct`` API).
        label: what the page shows.
        run: ``run(pipe, prepared, *, elevation_deg, preset, sampling, seed, device, progress)`` ->
            :class:`zero123.threed.reconstruct.Reconstruction`, where ``prepared`` is a
            :class:`zero123.nvs.PreparedInput`, ``preset`` one of :attr:`presets`' settings and
            ``sampling`` the :class:`zero123.nvs.SamplingSettings` of generated views.
        presets: ``presets()`` -> the route's named settings (the first is the default).
    """

    name: str
    label: str
    run: Callable[..., object]
    presets: Callable[[], Mapping[str, object]]


def _views_route(pipe, prepared, *, elevation_deg: float, preset, sampling, seed: int, device, progress: StageProgress):
    from ..threed.reconstruct import ImageRouteSettings, reconstruct_from_image

    settings = ImageRouteSettings(sampling=sampling, reconstruct=preset)
    return reconstruct_from_image(pipe, prepared, elevation_deg=elevation_deg, settings=settings, seed=seed,
                                  device=device, progress=progress)


def _views_presets():
    from ..threed.reconstruct import PRESETS

    return PRESETS


def _sds_route(pipe, prepared, *, elevation_deg: float, preset, sampling, seed: int, device, progress: StageProgress):
    import dataclasses

    from ..threed.sds import reconstruct_sds

    settings = dataclasses.replace(preset, guidance=dataclasses.replace(preset.guidance, guidance_scale=sampling.guidance))
    return reconstruct_sds(pipe, prepared, elevation_deg=elevation_deg, settings=settings, init="hull", seed=seed,
                           device=device, progress=progress)


def _sds_presets():
    from ..threed.sds import SDS_PRESETS

    return SDS_PRESETS


#: The routes the 3D tab lists, in order (the first is the default). A new route is one more entry.
ROUTES: tuple[Route, ...] = (
    Route("views", "Generated views → field (fast)", _views_route, _views_presets),
    Route("sds", "Score distillation (slower, no generated views)", _sds_route, _sds_presets),
)


def get_route(name: str, routes: tuple[Route, ...] = ROUTES) -> Route:
    for route in routes:
        if route.name == name:
            return route
    raise ValueError(f"route must be one of {[r.name for r in routes]}, got {name!r}")


class ModelRunner:
    """One model job at a time on the device, and Stop per browser session.

    The app's queue already runs one model event at a time; the lock also covers a job whose event
    was cancelled while its thread still finishes its current denoising step.

    >>> runner = ModelRunner()
    >>> with runner.job("s1") as check:
    ...     check()                      # not stopped: returns
    ...     runner.stop("s1")
    ...     try:
    ...         check()
    ...     except JobCancelled:
    ...         print("stopped")
    stopped
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._stops: dict[str, threading.Event] = {}

    def stop(self, session: str | None) -> None:
        """Stop the running job of ``session`` (at its next step), if any."""
        event = self._stops.get(session or "")
        if event is not None:
            event.set()

    @contextmanager
    def job(self, session: str | None) -> Iterator[Callable[[], None]]:
        """Hold the device for one job; yields ``check()``, which raises :class:`JobCancelled` once
        the session pressed Stop (call it from the step callbacks)."""
        key = session or ""
        with self._lock:
            event = self._stops[key] = threading.Event()
            try:
                def check() -> None:
                    if event.is_set():
                        raise JobCancelled("stopped")

                yield check
            finally:
                if self._stops.get(key) is event:
                    del self._stops[key]


class JobFolders:
    """Per-job output folders under one temporary root: folders older than ``max_age_s`` are removed
    when a new one is made, and the root when the process exits (or :meth:`cleanup`).

    >>> jobs = JobFolders(max_age_s=0)
    >>> a = jobs.new(); b = jobs.new()
    >>> a.exists(), b.exists()              # a was older than 0 s: removed when b was made
    (False, True)
    >>> jobs.cleanup(); jobs.root.exists()
    False
    """

    def __init__(self, max_age_s: float = 3600.0, prefix: str = "zero123-app-"):
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.max_age_s = max_age_s
        self._count = 0
        self._lock = threading.Lock()
        atexit.register(self.cleanup)

    def new(self) -> Path:
        with self._lock:
            now = time.time()
            for old in self.root.iterdir():
                if now - old.stat().st_mtime >= self.max_age_s:
                    shutil.rmtree(old, ignore_errors=True)
            self._count += 1
            path = self.root / f"job{self._count:05d}"
            path.mkdir()
            return path

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
