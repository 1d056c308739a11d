"""Estimating the input photo's elevation with the model itself (One-2-3-45's idea, made cheap).

Zero-1-to-3 generates views for camera *changes*; where those views sit in the world depends on
the input's absolute elevation, which the photo does not state. Placed under the right elevation
the generated silhouettes agree with each other; under a wrong one they contradict.
:func:`estimate_elevation`:

1. generates a few views around the input (:attr:`ElevationSettings.azimuths` x
   :attr:`ElevationSettings.elevations`, one batched pipeline call; a ``"cond_polar"`` model, whose
   views depend on the elevation, gets one call per candidate);
2. for each candidate elevation, places the input and the views on their cameras, carves their
   silhouettes' visual hull (:func:`zero123.threed.fit.visual_hull`) and projects it back into
   every view: the score is the mean IoU of those projections with the silhouettes;
3. returns the best-scoring candidate, refined by a parabola through it and its neighbours; when
   the scores barely differ (best minus worst below :attr:`ElevationSettings.min_spread`), or the
   best is an end of the candidate range (a trend, not a peak: the candidates bracket the plausible
   elevations), the views carry no usable elevation signal (a weak model's blurry silhouettes) and
   the estimate falls back to :attr:`ElevationSettings.fallback` (the library's default elevation),
   saying so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..camera import DEFAULT_INPUT_DISTANCE, RelativeCamera, project_points
from ..nvs import SamplingSettings
from .fit import DEFAULT_FOV_DEG, PosedViews, visual_hull


@dataclass(frozen=True)
class ElevationSettings:
    """How :func:`estimate_elevation` works.

    Attributes:
        candidates: elevations tried, degrees above the equator (increasing).
        azimuths / elevations: the generated views' camera changes (degrees); the input's own
            camera (0, 0) is skipped.
        sampling: the sampler for those views.
        image_size: side at which silhouettes are compared.
        hull_resolution: the visual hull's grid side.
        hull_share: weighted share of agreeing views a hull node needs (generated silhouettes disagree a little).
        input_weight: how much the input's (exact) silhouette counts against one generated view.
        white_threshold: generated pixels farther than this from white are object.
        distance: the cameras' distance (world units).
        min_spread: the smallest best-minus-worst score difference taken as a signal.
        require_peak: a best score at an end of the candidates is no signal either.
        fallback: the elevation returned without a signal (degrees).
    """

    candidates: tuple[float, ...] = (-10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0)
    azimuths: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
    elevations: tuple[float, ...] = (-20.0, 0.0, 30.0)
    sampling: SamplingSettings = SamplingSettings(steps=20)
    image_size: int = 64
    hull_resolution: int = 64
    hull_share: float = 0.85
    input_weight: float = 2.0
    white_threshold: float = 0.1
    distance: float = DEFAULT_INPUT_DISTANCE
    min_spread: float = 0.04
    require_peak: bool = True
    fallback: float = 15.0

    def __post_init__(self):
        if not (0.0 <= self.min_spread < 1.0 and -90.0 < self.fallback < 90.0):
            raise ValueError(f"elevation min_spread must be in [0, 1) and fallback in (-90, 90), got {self.min_spread}, {self.fallback}")
        c = [float(x) for x in self.candidates]
        if len(c) < 2 or c != sorted(c) or len(set(c)) != len(c):
            raise ValueError(f"elevation candidates must be at least 2 increasing distinct angles, got {self.candidates!r}")
        top = max(c) + max(self.elevations)
        bottom = min(c) + min(self.elevations)
        if not (-90.0 < bottom and top < 90.0):
            raise ValueError(f"candidate elevations plus the views' elevation changes must stay inside (-90, 90) degrees, "
                             f"got {bottom:g} .. {top:g}")
        if not self.cameras():
            raise ValueError("elevation estimation needs at least one view besides the input's own camera")
        for name in ("image_size", "hull_resolution"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 8:
                raise ValueError(f"elevation {name} must be an integer >= 8, got {v!r}")
        if not 0.0 < self.hull_share <= 1.0:
            raise ValueError(f"elevation hull_share must be in (0, 1], got {self.hull_share}")
        if not self.input_weight > 0 or not self.distance > 0:
            raise ValueError("elevation input_weight and distance must be > 0")

    def cameras(self) -> list[RelativeCamera]:
        return [RelativeCamera.from_degrees(azimuth=a, elevation=e) for e in self.elevations for a in self.azimuths
                if not (math.isclose(a % 360.0, 0.0, abs_tol=1e-9) and e == 0.0)]


@dataclass
class ElevationEstimate:
    """The estimate: ``elevation_deg``, every candidate's score (mean silhouette IoU), and whether
    the scores were too flat to use (``method == "fallback"``: ``elevation_deg`` is the fallback)."""

    elevation_deg: float
    candidates: list[float]
    scores: list[float]
    seconds: float = 0.0
    method: str = "hull-consistency"
    extra: dict = field(default_factory=dict)

    def report(self) -> dict:
        return {"elevation_deg": round(self.elevation_deg, 3), "method": self.method, **self.extra,
                "candidates": self.candidates, "scores": [round(s, 4) for s in self.scores], "seconds": round(self.seconds, 3)}


def hull_consistency(views: PosedViews, bound: float, resolution: int, share: float) -> float:
    """Weighted mean IoU between each view's silhouette (alpha > 0.5) and the projection of the
    views' visual hull into it (every hull node splatted to its pixel, closed by one pixel, then
    shrunk by the one pixel :func:`~zero123.threed.fit.visual_hull` grows the silhouettes by)."""
    hull = visual_hull(views, bound, resolution, share)
    c = torch.linspace(-bound, bound, resolution, dtype=torch.float64)
    pts = torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3)[hull.reshape(-1)]
    size = views.image_size
    total = 0.0
    for v in range(views.num_views):
        sil = torch.zeros(size * size)
        if len(pts):
            px, depth = project_points(pts, views.world_to_cams[v], views.fov_deg, size)
            col, row = torch.floor(px[:, 0]).long(), torch.floor(px[:, 1]).long()
            ok = (depth > 0) & (col >= 0) & (col < size) & (row >= 0) & (row < size)
            sil[(row[ok] * size + col[ok])] = 1.0
        # close the gaps between splatted nodes, then undo the one-pixel growth of visual_hull's silhouettes
        sil = F.max_pool2d(sil.reshape(1, 1, size, size), 3, stride=1, padding=1)
        sil = -F.max_pool2d(-sil, 5, stride=1, padding=2)[0, 0] > 0
        ref = views.alpha[v] > 0.5
        union = float((sil | ref).sum())
        total += float(views.weights[v]) * (float((sil & ref).sum()) / union if union else 1.0)
    return total / float(views.weights.sum())


def estimate_elevation(pipe, image, settings: ElevationSettings = ElevationSettings(), *, seed: int = 0,
                       progress=None) -> ElevationEstimate:
    """The input view's elevation (degrees above the equator) under which the model's generated
    views are most consistent (see the module docstring).

    Args:
        pipe: a :class:`zero123.Zero123Pipeline`.
        image: the input (path, PIL image, array or :class:`zero123.nvs.PreparedInput`).
        settings: :class:`ElevationSettings`.
        seed: generated view ``i`` uses seed ``seed + i``.
        progress: ``progress(done, total)`` over the denoising steps.
    """
    from ..nvs import PreparedInput, generate_views, prepare_input
    from .reconstruct import alpha_from_white

    start = time.perf_counter()
    prepared = image if isinstance(image, PreparedInput) else prepare_input(image)
    input_rgb = np.asarray(prepared.image.convert("RGB"), np.float32) / 255.0
    mask = prepared.mask if prepared.mask is not None else alpha_from_white(input_rgb[None], settings.white_threshold)[0] > 0.5
    cams = settings.cameras()
    candidates = [float(c) for c in settings.candidates]
    per_candidate = pipe.camera_embedding == "cond_polar"
    calls = len(candidates) if per_candidate else 1
    done = [0]

    def on_step(i, n):
        if progress is not None:
            progress(done[0] * n + i, calls * n)

    def generate(cond_elevation):
        novel = generate_views(pipe, prepared, cams, settings=settings.sampling, seed=seed, cond_elevation=cond_elevation, on_step=on_step)
        done[0] += 1
        return np.stack([np.asarray(v.image.convert("RGB"), np.float32) / 255.0 for v in novel.views])

    # 1. The generated views (once, or once per candidate for a model that needs the elevation)
    shared = None if per_candidate else generate(None)

    # 2. Score every candidate: the hull of the views placed under it, projected back
    scores = [candidate_score(input_rgb, mask, generate(e) if per_candidate else shared, e, settings) for e in candidates]

    # 3. The best candidate, refined by a parabola through its neighbours (or the fallback without a signal)
    seconds = time.perf_counter() - start
    k = int(np.argmax(scores))
    at_end = settings.require_peak and k in (0, len(scores) - 1)
    if max(scores) - min(scores) < settings.min_spread or at_end:
        return ElevationEstimate(float(settings.fallback), candidates, [float(s) for s in scores], seconds, "fallback",
                                 {"best_candidate": best_elevation(candidates, scores),
                                  "reason": "best at an end of the candidates" if at_end else "scores too flat"})
    return ElevationEstimate(best_elevation(candidates, scores), candidates, [float(s) for s in scores], seconds)


def best_elevation(candidates: list[float], scores: list[float]) -> float:
    """The best-scoring candidate, moved to the top of the parabola through it and its neighbours.

    >>> best_elevation([0.0, 10.0, 20.0], [0.5, 0.9, 0.7])
    11.666667
    """
    k = int(np.argmax(scores))
    best = float(candidates[k])
    if 0 < k < len(candidates) - 1:
        (x0, x1, x2), (y0, y1, y2) = candidates[k - 1:k + 2], scores[k - 1:k + 2]
        denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
        a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
        b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / denom
        if a < 0:
            best = float(min(max(-b / (2 * a), x0), x2))
    return round(best, 6)


def candidate_score(input_rgb: np.ndarray, mask: np.ndarray, images: np.ndarray, elevation_deg: float,
                    settings: ElevationSettings = ElevationSettings()) -> float:
    """:func:`hull_consistency` of the input (``(S, S, 3)`` in [0, 1] and its ``(S, S)`` silhouette)
    and the views of :meth:`ElevationSettings.cameras` (``(N, S', S', 3)`` in [0, 1] on white), all
    placed under the input elevation ``elevation_deg``."""
    from .reconstruct import alpha_from_white, field_bound_from_mask, input_camera, ring_world_to_cams

    cams = settings.cameras()
    size = settings.image_size
    inp = PosedViews(torch.from_numpy(input_rgb)[None], torch.from_numpy(mask.astype(np.float32))[None],
                     input_camera(elevation_deg, settings.distance)[None]).resized(size)
    gen = PosedViews(torch.from_numpy(images), torch.from_numpy(alpha_from_white(images, settings.white_threshold)),
                     ring_world_to_cams(cams, elevation_deg, settings.distance)).resized(size)
    views = PosedViews(torch.cat([inp.rgb, gen.rgb]), torch.cat([inp.alpha, gen.alpha]),
                       torch.cat([inp.world_to_cams, gen.world_to_cams]), DEFAULT_FOV_DEG,
                       torch.tensor([settings.input_weight] + [1.0] * len(cams)))
    bound = field_bound_from_mask(mask, DEFAULT_FOV_DEG, settings.distance)
    return hull_consistency(views, bound, settings.hull_resolution, settings.hull_share)
