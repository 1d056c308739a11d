"""Run a novel-view evaluation: predict each object's target views, score them, write a report.

The built-in ``identity`` baseline (predict the input view for every target) is ALWAYS scored
beside the model, so every report shows the margin over doing nothing.

Outputs in ``out_dir`` (each written atomically):

* ``results.json``: protocol, settings, metric notes, per-method summary, per-object results
  with per-view values. Non-finite numbers are written as the strings ``"inf"`` / ``"nan"`` so
  the file stays strict JSON.
* ``results.csv``: one row per (object, method) with the object's mean metrics, then one
  ``MEAN`` row per method.
* ``per_view.csv``: one row per (object, target view, method).
* ``contact_sheet.png``: per object a ground-truth row (input view first) and a prediction row.

Metrics per view: PSNR, SSIM, mask IoU (silhouette agreement, foreground = not near-white; see
:mod:`zero123.eval.metrics`) and LPIPS when available. Aggregation: an object's metric is the mean
over its scored views; a method's summary is the mean over objects. PSNR of identical images is ``inf`` (so is any mean that includes one).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from ..camera import RelativeCamera, elevation_deg_from_world_to_cam
from ..utils.fileio import atomic_save_image, atomic_write
from . import metrics as M
from .protocols import EXPECTED_OBJECTS, EvalProtocol, angle_label
from .views import ViewsFolder

METRICS = ("psnr", "ssim", "mask_iou", "lpips")


# ------------------------------------------------------------------------------- predictors
class Predictor(Protocol):
    """Anything that turns an input view and target cameras into predicted views.

    ``__call__(input_image, cameras, *, cond_elevation, seed)`` gets the input view as an RGB PIL
    image (composited on white, at the data's stored resolution) and returns one ``(H, W, 3)``
    float array in [0, 1] per camera, at whatever resolution the model works at.
    """

    name: str

    def __call__(
        self, input_image: Image.Image, cameras: Sequence[RelativeCamera], *, cond_elevation: float, seed: int
    ) -> list[np.ndarray]: ...


class IdentityPredictor:
    """The do-nothing baseline: every target view is predicted as the input view."""

    name = "identity"

    def __call__(self, input_image, cameras, *, cond_elevation, seed):
        arr = np.asarray(input_image.convert("RGB"), dtype=np.float64) / 255.0
        return [arr for _ in cameras]


@dataclass
class PipelinePredictor:
    """Run a :class:`zero123.Zero123Pipeline` with fixed sampler settings.

    The pose of each target comes from the stored matrices (docs/conventions.md, Cameras); Stable-Zero123-style models
    (``cc_projection.config.camera_embedding == "cond_polar"``) also get the input view's
    elevation. Each object is sampled with a CPU generator seeded with ``seed`` so results do not
    depend on object order or ``--limit``.
    """

    pipe: object
    num_inference_steps: int = 50
    guidance_scale: float = 3.0
    eta: float = 1.0
    max_batch: int | None = None
    name: str = "model"
    #: ``"ddim"`` (original grid) or another :data:`zero123.schedule.SOLVERS` entry.
    solver: str = "ddim"
    #: ``on_step(done, total)`` after each denoising step (progress displays; :func:`evaluate` fills it).
    on_step: Callable[[int, int], None] | None = None

    def __call__(self, input_image, cameras, *, cond_elevation, seed):
        import torch

        kind = getattr(getattr(self.pipe.cc_projection, "config", None), "camera_embedding", "relative_radius")
        extra = {"cond_elevation": cond_elevation} if kind == "cond_polar" else {}
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        out = self.pipe(
            input_image,
            cameras=list(cameras),
            num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale,
            eta=self.eta,
            generator=generator,
            output_type="np",
            max_batch=self.max_batch,
            solver=self.solver,
            callback_on_step_end=self._callback(),
            **extra,
        )
        images = np.asarray(out.images, dtype=np.float64)
        if images.ndim != 4 or images.shape[0] != len(cameras):
            raise RuntimeError(f"pipeline returned images of shape {images.shape} for {len(cameras)} cameras")
        return [np.clip(im, 0.0, 1.0) for im in images]

    def _callback(self):
        if self.on_step is None:
            return None

        def callback(pipe, i, t, tensors):
            self.on_step(i + 1, pipe.num_timesteps)
            return {}

        return callback


# ------------------------------------------------------------------------------- results
@dataclass
class ViewResult:
    view: int
    label: str
    azimuth: float
    elevation: float
    d_radius: float
    scores: dict[str, dict[str, float | None]]  # method -> metric -> value


@dataclass
class ObjectResult:
    object_id: str
    input_view: int
    views: list[ViewResult]
    missing_targets: list[str]
    seconds: dict[str, float]  # method -> prediction time
    means: dict[str, dict[str, float | None]] = field(default_factory=dict)


@dataclass
class EvalReport:
    protocol: dict
    settings: dict
    methods: list[str]
    notes: list[str]
    summary: dict[str, dict[str, float | None]]
    objects: list[ObjectResult]
    skipped_objects: list[dict]
    wall_seconds: float
    out_dir: str | None = None

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else ("-inf" if x < 0 else "nan")
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return _jsonable(x.item())
    return x


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    if any(math.isinf(v) for v in vals):
        return math.inf if all(v > 0 for v in vals if math.isinf(v)) else math.nan
    return float(np.mean(vals))


# ------------------------------------------------------------------------------- targets
def resolve_targets(
    views: ViewsFolder, protocol: EvalProtocol, object_id: str
) -> tuple[list[tuple[int, RelativeCamera, str]], list[str]]:
    """``(targets, missing)``: the scored views of ``object_id`` as (index, relative camera, label),
    and the labels of requested camera changes that no view matches."""
    n = views.num_views(object_id)
    src = protocol.input_view
    if src >= n:
        raise ValueError(f"protocol input_view {src} does not exist: object {object_id!r} has {n} views")
    cond = views.load_world_to_cam(object_id, src)
    cams = {v: RelativeCamera.from_world_to_cam(cond, views.load_world_to_cam(object_id, v)) for v in range(n)}
    if protocol.targets == "others":
        idx = [v for v in range(n) if v != src]
        return [(v, cams[v], angle_label(cams[v])) for v in idx], []
    if not protocol.uses_camera_changes:
        bad = [v for v in protocol.targets if v >= n]
        if bad:
            raise ValueError(
                f"protocol {protocol.name!r} scores views {list(protocol.targets)} but object {object_id!r} has only "
                f"{n} views (missing {bad}); see the protocol's data layout"
            )
        return [(v, cams[v], angle_label(cams[v])) for v in protocol.targets], []
    found, missing = [], []
    for change in protocol.targets:
        best = min((v for v in range(n) if v != src), key=lambda v: change.distance_deg(cams[v]), default=None)
        if best is not None and change.distance_deg(cams[best]) <= protocol.match_tolerance_deg:
            found.append((best, cams[best], change.label))
        else:
            missing.append(change.label)
    return found, missing


def _resize(arr: np.ndarray, size: int) -> np.ndarray:
    if arr.shape[0] == size and arr.shape[1] == size:
        return arr
    im = Image.fromarray(np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8))
    return np.asarray(im.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64) / 255.0


def _to_pil(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8))


# ------------------------------------------------------------------------------- evaluate
def evaluate(
    views: ViewsFolder,
    protocol: EvalProtocol,
    predictor: Predictor | None,
    out_dir: str | Path | None,
    *,
    seed: int = 0,
    limit: int | None = None,
    lpips: bool = True,
    device: str = "cpu",
    settings: dict | None = None,
    sheet_objects: int = 8,
    save_images: bool = False,
    progress: bool = True,
) -> EvalReport:
    """Score ``predictor`` (and always the identity baseline) on ``views`` under ``protocol``.

    Args:
        views: the data (:class:`ViewsFolder`, already split).
        protocol: input view, targets, resolution, LPIPS backbone.
        predictor: the model (e.g. :class:`PipelinePredictor`); ``None`` scores identity only.
        out_dir: where the report files go (``None``: write nothing, just return the report).
        seed: per-object sampling seed.
        limit: score only the first N objects (after the protocol's ``num_objects``).
        lpips: try LPIPS (skipped with a note when the package or weights are absent).
        settings: sampler settings recorded in the report.
        sheet_objects: how many objects the contact sheet shows.
        save_images: also write every prediction as PNG under ``out_dir/images``.
        progress: show a rich progress display on stderr: objects, and the denoising steps of a
            predictor with an ``on_step`` slot (:class:`PipelinePredictor`).

    Returns:
        The :class:`EvalReport` (also written as JSON/CSV when ``out_dir`` is given).
    """
    t_start = time.perf_counter()
    # 1. Select the objects and their targets, checked before any slow work
    notes: list[str] = []
    object_ids, plan, skipped = _select_objects(views, protocol, limit, notes)
    # 2. The metrics and the methods (identity first)
    lpips_fn = _lpips_or_note(protocol, lpips, device, notes)
    predictors = _predictors(predictor)
    methods = [p.name for p in predictors]
    # 3. Predict and score, object by object
    results: list[ObjectResult] = []
    sheet = _SheetRows(protocol.resolution, sheet_objects)
    with _Progress(progress, len(object_ids), predictors) as bar:
        for oid in object_ids:
            scored = _score_object(views, protocol, oid, plan[oid], predictors, lpips_fn, seed)
            results.append(scored.result)
            sheet.add(scored)
            if save_images and out_dir is not None:
                _save_predictions(Path(out_dir), scored, methods[1:])
            bar.object_done(oid)
    # 4. Summarise (per method, and the margin over identity)
    report = EvalReport(
        protocol=protocol.describe(),
        settings=dict(settings or {}, seed=seed, limit=limit, device=device),
        methods=methods,
        notes=notes,
        summary=_summarise(results, methods, predictor),
        objects=results,
        skipped_objects=skipped,
        wall_seconds=time.perf_counter() - t_start,
        out_dir=str(out_dir) if out_dir is not None else None,
    )
    # 5. Write the report files and the contact sheet
    if out_dir is not None:
        write_report(report, out_dir)
        atomic_save_image(sheet.image(results), Path(out_dir) / "contact_sheet.png")
    return report


def _select_objects(views: ViewsFolder, protocol: EvalProtocol, limit: int | None, notes: list[str]):
    """``(object_ids, plan, skipped)``: the objects to score (protocol's count, then ``limit``), each
    one's ``(targets, missing)`` from :func:`resolve_targets`, and the objects no target matched."""
    object_ids = list(views.object_ids)
    if protocol.num_objects is not None:
        object_ids = object_ids[: protocol.num_objects]
    expected = EXPECTED_OBJECTS.get(protocol.name)
    if expected is not None and len(object_ids) < expected:
        notes.append(f"protocol {protocol.name} expects {expected} objects; only {len(object_ids)} found in the data")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if limit < len(object_ids):
            notes.append(f"limited to the first {limit} of {len(object_ids)} objects")
        object_ids = object_ids[:limit]
    views.check(object_ids)
    plan = {oid: resolve_targets(views, protocol, oid) for oid in object_ids}
    skipped = [{"object_id": oid, "reason": f"no view matches {miss}"} for oid, (t, miss) in plan.items() if not t]
    object_ids = [oid for oid in object_ids if plan[oid][0]]
    if not object_ids:
        raise ValueError(
            f"targets: no object has views at the requested camera changes {[t.label for t in protocol.targets]} "
            f"(tolerance {protocol.match_tolerance_deg} deg); render ground truth at those poses first"
        )
    return object_ids, plan, skipped


def _lpips_or_note(protocol: EvalProtocol, lpips: bool, device: str, notes: list[str]):
    """The LPIPS function (or ``None``), with the SSIM and LPIPS notes appended to ``notes``."""
    lpips_fn, lpips_note = (None, "LPIPS disabled (--no-lpips)")
    if lpips:
        lpips_fn, lpips_note = M.load_lpips(protocol.lpips_backbone, device=device)
    notes += [f"SSIM: {M.SSIM_NOTE}", M.MASK_IOU_NOTE, lpips_note]
    return lpips_fn


def _predictors(predictor: Predictor | None) -> list[Predictor]:
    predictors: list[Predictor] = [IdentityPredictor()]
    if predictor is not None:
        if predictor.name == "identity":
            raise ValueError("the model may not be called 'identity': that name is the built-in baseline")
        predictors.append(predictor)
    return predictors


@dataclass
class _Scored:
    """One object's result with the images behind it (input view, ground truths, predictions)."""

    result: ObjectResult
    input_image: Image.Image
    ground_truths: list[np.ndarray]
    predictions: dict[str, list[np.ndarray]]  # method -> one (H, W, 3) array in [0, 1] per target


def _score_object(views, protocol, oid, plan_entry, predictors, lpips_fn, seed) -> _Scored:
    """Every predictor on one object's input view, each prediction scored against its ground truth
    at the protocol's resolution."""
    targets, missing = plan_entry
    res = protocol.resolution
    input_full = views.load_rgb(oid, protocol.input_view)
    cond_elevation = elevation_deg_from_world_to_cam(views.load_world_to_cam(oid, protocol.input_view))
    gts = [np.asarray(views.load_rgb(oid, v, res), dtype=np.float64) / 255.0 for v, _, _ in targets]
    cameras = [c for _, c, _ in targets]
    view_results = [
        ViewResult(v, label, round(c.azimuth, 4), round(c.elevation, 4), round(c.d_radius, 6), {})
        for v, c, label in targets
    ]
    seconds: dict[str, float] = {}
    preds_by_method: dict[str, list[np.ndarray]] = {}
    for p in predictors:
        t0 = time.perf_counter()
        image_in = input_full.resize((res, res), Image.Resampling.BICUBIC) if p.name == "identity" else input_full
        preds = p(image_in, cameras, cond_elevation=cond_elevation, seed=seed)
        seconds[p.name] = time.perf_counter() - t0
        preds = [_resize(np.asarray(x, dtype=np.float64), res) for x in preds]
        preds_by_method[p.name] = preds
        for vr, pred, gt in zip(view_results, preds, gts):
            vr.scores[p.name] = {
                "psnr": M.psnr(pred, gt),
                "ssim": M.ssim(pred, gt),
                "mask_iou": M.mask_iou(pred, gt),
                "lpips": lpips_fn(pred, gt) if lpips_fn is not None else None,
            }
    obj = ObjectResult(oid, protocol.input_view, view_results, missing, seconds)
    methods = [p.name for p in predictors]
    obj.means = {m: {k: _mean([vr.scores[m][k] for vr in view_results]) for k in METRICS} for m in methods}
    return _Scored(obj, input_full, gts, preds_by_method)


def _save_predictions(out_dir: Path, scored: _Scored, methods: list[str]) -> None:
    obj = scored.result
    for m in methods:
        for vr, x in zip(obj.views, scored.predictions[m]):
            atomic_save_image(_to_pil(x), out_dir / "images" / obj.object_id / f"{vr.view:03d}_{m}.png")


def _summarise(results: list[ObjectResult], methods: list[str], predictor: Predictor | None) -> dict:
    """Per method the mean over objects of each metric, counts and time; plus model - identity."""
    summary = {
        m: {k: _mean([o.means[m][k] for o in results]) for k in METRICS}
        | {
            "objects": len(results),
            "views": sum(len(o.views) for o in results),
            "seconds_per_object": float(np.mean([o.seconds[m] for o in results])),
        }
        for m in methods
    }
    if predictor is not None:
        a, b = summary[predictor.name], summary["identity"]
        # model minus identity: positive is better for PSNR/SSIM/mask IoU, negative is better for LPIPS
        summary["margin_over_identity"] = {
            k: (a[k] - b[k]) if a[k] is not None and b[k] is not None else None for k in METRICS
        }
    return summary


class _SheetRows:
    """The contact sheet's rows: per shown object a ground-truth row (input view first) and a
    prediction row of the last method."""

    def __init__(self, resolution: int, max_objects: int):
        self.res, self.max_objects = resolution, max_objects
        self.rows: list[list[Image.Image | None]] = []
        self.labels: list[str] = []
        self.cols = 1

    def add(self, scored: _Scored) -> None:
        if len(self.rows) >= 2 * self.max_objects:
            return
        oid, shown = scored.result.object_id, list(scored.predictions)[-1]
        input_small = scored.input_image.resize((self.res, self.res), Image.Resampling.BICUBIC)
        self.rows.append([input_small] + [_to_pil(g) for g in scored.ground_truths])
        self.rows.append([None] + [_to_pil(x) for x in scored.predictions[shown]])
        self.labels += [f"{oid[:16]} gt", f"{oid[:16]} {shown[:10]}"]
        self.cols = max(self.cols, 1 + len(scored.ground_truths))

    def image(self, results: list[ObjectResult]) -> Image.Image:
        from ..utils.grid import contact_sheet

        shown_labels = {tuple(v.label for v in o.views) for o in results[: self.max_objects]}
        same = len(shown_labels) == 1 and len(next(iter(shown_labels))) == self.cols - 1
        col_labels = ["input"] + (list(next(iter(shown_labels))) if same else [f"t{i}" for i in range(1, self.cols)])
        rows = [r + [None] * (self.cols - len(r)) for r in self.rows]
        return contact_sheet(rows, row_labels=self.labels, col_labels=col_labels, cell_size=min(self.res, 128))


class _Progress:
    """Progress on stderr (rich): objects done, and the denoising steps of predictors that have an
    ``on_step`` slot (filled for the duration, then restored). Does nothing when disabled."""

    def __init__(self, enabled: bool, total: int, predictors: list):
        self.enabled, self.total, self.predictors = enabled, total, predictors
        self._restore: list = []

    def __enter__(self):
        if not self.enabled:
            return self
        from ..utils.progress import progress_display

        self._bar = progress_display()
        self._bar.__enter__()
        self._objects = self._bar.add_task("objects", total=self.total)
        stepped = [p for p in self.predictors if hasattr(p, "on_step") and p.on_step is None]
        if stepped:
            steps = self._bar.add_task("denoising", total=None)
            for p in stepped:
                self._restore.append(p)
                p.on_step = lambda done, total: self._bar.update(steps, completed=done, total=total)
        return self

    def object_done(self, object_id: str) -> None:
        if self.enabled:
            self._bar.update(self._objects, advance=1, description=f"objects (last: {object_id[:24]})")

    def __exit__(self, *exc):
        for p in self._restore:
            p.on_step = None
        if self.enabled:
            self._bar.__exit__(*exc)
        return False


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "inf" if math.isinf(v) and v > 0 else ("nan" if math.isnan(v) else f"{v:.6f}")
    return str(v)


def write_report(report: EvalReport, out_dir: str | Path) -> None:
    """Write ``results.json``, ``results.csv`` and ``per_view.csv`` atomically into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "results.json", "w") as f:
        json.dump(report.to_dict(), f, indent=2, allow_nan=False)
        f.write("\n")

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["object_id", "method", "views", *METRICS, "seconds"])
    for o in report.objects:
        for m in report.methods:
            w.writerow([o.object_id, m, len(o.views), *(_fmt(o.means[m][k]) for k in METRICS), _fmt(o.seconds[m])])
    for m in report.methods:
        s = report.summary[m]
        w.writerow(["MEAN", m, s["views"], *(_fmt(s[k]) for k in METRICS), _fmt(s["seconds_per_object"])])
    with atomic_write(out / "results.csv", "w") as f:
        f.write(buf.getvalue())

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["object_id", "view", "label", "azimuth", "elevation", "d_radius", "method", *METRICS])
    for o in report.objects:
        for vr in o.views:
            for m in report.methods:
                w.writerow([o.object_id, vr.view, vr.label, vr.azimuth, vr.elevation, vr.d_radius, m,
                            *(_fmt(vr.scores[m][k]) for k in METRICS)])
    with atomic_write(out / "per_view.csv", "w") as f:
        f.write(buf.getvalue())


def format_summary(report: EvalReport) -> str:
    """Markdown table of the summary (one row per method, plus the margin)."""
    lines = ["| method | PSNR | SSIM | mask IoU | LPIPS | objects | s/object |", "|---|---|---|---|---|---|---|"]
    for m in report.methods:
        s = report.summary[m]
        lines.append(
            f"| {m} | {_fmt(s['psnr'])} | {_fmt(s['ssim'])} | {_fmt(s['mask_iou'])} | {_fmt(s['lpips']) or 'skipped'} "
            f"| {s['objects']} | {s['seconds_per_object']:.3f} |"
        )
    if "margin_over_identity" in report.summary:
        d = report.summary["margin_over_identity"]
        lines.append(
            f"| margin over identity | {_fmt(d['psnr'])} | {_fmt(d['ssim'])} | {_fmt(d['mask_iou'])} "
            f"| {_fmt(d['lpips']) or 'skipped'} | | |"
        )
    return "\n".join(lines)
