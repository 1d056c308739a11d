"""Fit a radiance field to posed images (the multi-view reconstruction at the heart of both routes).

:class:`PosedViews` holds the target images, their silhouettes (alpha) and their cameras (3x4
world-to-camera, Blender camera axes, through :mod:`zero123.camera`). :func:`fit_field` runs the
loop as numbered steps; every weight and schedule is a field of :class:`FitSettings`
(:data:`zero123.threed.reconstruct.PRESETS` holds ready ones). Extra loss terms (e.g. score distillation) plug in through
``extra_loss`` and are called from the same loop.

Losses per step, on a batch of rays drawn from the views in proportion to their weights:

* colour: MSE between the render composited over a background and the target composited over the
  same background; the background is a random colour per ray (``random_background``), so empty
  space cannot hide behind a white "floater" that matches a white background;
* silhouette: MSE between the rendered opacity and the target alpha;
* total variation of the grid (:meth:`RadianceField.regularization`);
* optional opacity entropy (pushes opacities to 0 or 1).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..camera import camera_rays, project_points
from .field import FieldSettings, RadianceField, make_field
from .volume import OccupancyGrid, render_rays

#: Horizontal field of view of the training renders (35 mm lens on a 32 mm sensor).
DEFAULT_FOV_DEG = 49.13


@dataclass
class PosedViews:
    """Images of one object and their cameras.

    Attributes:
        rgb: ``(V, H, W, 3)`` float32 straight (not premultiplied) colour in [0, 1].
        alpha: ``(V, H, W)`` float32 silhouette in [0, 1] (1 = object).
        world_to_cams: ``(V, 3, 4)`` float64 world-to-camera matrices (Blender camera axes).
        fov_deg: horizontal field of view of every view, degrees.
        weights: ``(V,)`` float32 share of the rays drawn from each view (the input view of the fast
            route is weighted up); default all 1.
    """

    rgb: torch.Tensor
    alpha: torch.Tensor
    world_to_cams: torch.Tensor
    fov_deg: float = DEFAULT_FOV_DEG
    weights: torch.Tensor | None = None

    def __post_init__(self):
        self.rgb = torch.as_tensor(self.rgb, dtype=torch.float32)
        self.alpha = torch.as_tensor(self.alpha, dtype=torch.float32)
        self.world_to_cams = torch.as_tensor(np.asarray(self.world_to_cams), dtype=torch.float64)[..., :3, :]
        if self.rgb.ndim != 4 or self.rgb.shape[-1] != 3 or self.rgb.shape[1] != self.rgb.shape[2]:
            raise ValueError(f"views rgb must be (V, H, W, 3) with square images, got {tuple(self.rgb.shape)}")
        v, h, w, _ = self.rgb.shape
        if tuple(self.alpha.shape) != (v, h, w):
            raise ValueError(f"views alpha must be ({v}, {h}, {w}) to match rgb, got {tuple(self.alpha.shape)}")
        if tuple(self.world_to_cams.shape) != (v, 3, 4):
            raise ValueError(f"views world_to_cams must be ({v}, 3, 4), got {tuple(self.world_to_cams.shape)}")
        if not (torch.isfinite(self.rgb).all() and torch.isfinite(self.alpha).all()):
            raise ValueError("views rgb/alpha contain NaN or inf")
        self.weights = torch.ones(v) if self.weights is None else torch.as_tensor(self.weights, dtype=torch.float32)
        if tuple(self.weights.shape) != (v,) or (self.weights < 0).any() or not self.weights.sum() > 0:
            raise ValueError(f"views weights must be ({v},) non-negative with a positive sum, got {self.weights.tolist()}")
        if not 0.0 < float(self.fov_deg) < 180.0:
            raise ValueError(f"views fov_deg must be in (0, 180), got {self.fov_deg}")
        if not (self.alpha > 0.5).any():
            raise ValueError("views have no object pixels (every alpha <= 0.5); nothing to reconstruct")

    @classmethod
    def from_rgba(cls, images, world_to_cams, fov_deg: float = DEFAULT_FOV_DEG, weights=None) -> "PosedViews":
        """From ``(V, H, W, 4)`` uint8 straight RGBA images (as the renderers and ``views_release`` store them)."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 4:
            raise ValueError(f"images must be (V, H, W, 4) RGBA, got shape {images.shape}")
        x = torch.from_numpy(images.astype(np.float32) / 255.0)
        return cls(x[..., :3], x[..., 3], world_to_cams, fov_deg, weights)

    @property
    def num_views(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def image_size(self) -> int:
        return int(self.rgb.shape[1])

    def resized(self, size: int) -> "PosedViews":
        """The same views at ``size`` x ``size`` (area-averaged premultiplied colour, so edges stay clean)."""
        if size == self.image_size:
            return self
        import torch.nn.functional as F

        pre = torch.cat([self.rgb * self.alpha[..., None], self.alpha[..., None]], -1).permute(0, 3, 1, 2)
        mode = "area" if size < self.image_size else "bilinear"
        out = F.interpolate(pre, size=(size, size), mode=mode).permute(0, 2, 3, 1)
        alpha = out[..., 3].clamp(0, 1)
        rgb = torch.where(alpha[..., None] > 1e-4, out[..., :3] / alpha[..., None].clamp_min(1e-4), out[..., :3]).clamp(0, 1)
        return PosedViews(rgb, alpha, self.world_to_cams, self.fov_deg, self.weights)

    def composited(self, background=(1.0, 1.0, 1.0)) -> torch.Tensor:
        """``(V, H, W, 3)`` colour over a constant background."""
        bg = torch.as_tensor(background, dtype=torch.float32)
        return self.rgb * self.alpha[..., None] + bg * (1 - self.alpha[..., None])


@dataclass(frozen=True)
class FitSettings:
    """Every weight and schedule of :func:`fit_field`.

    Attributes:
        steps: optimisation steps.
        batch_rays: rays per step.
        num_samples: samples per ray (:func:`zero123.threed.volume.render_rays`).
        lr / lr_final: Adam learning rate at the start and at the end (exponential decay).
        grow_at: fractions of ``steps`` at which a dense grid grows, geometrically from the field's
            ``initial_resolution`` to its ``resolution`` (coarse to fine).
        rgb_weight / mask_weight / tv_weight / distortion_weight / entropy_weight: loss weights
            (:func:`distortion` makes surfaces sharp instead of foggy).
        random_background: a random background colour per ray (else white).
        hull_share: empty the space outside the silhouettes' visual hull before the first step
            (:func:`visual_hull` with this share; 0 = off): the occupancy grid then skips it from
            the start. Inside, the field starts as usual. Fields that cannot be initialised (the
            hash grid) start as usual everywhere.
        occupancy_resolution / occupancy_every / occupancy_warmup: empty-space skipping grid, how
            often it is refreshed and from which step it is used.
        skipping: empty-space skipping and early ray termination (False: every sample of every ray
            is evaluated, the plain twin the benchmarks compare with).
        seed: seeds the ray sampling, jitter and backgrounds.
    """

    steps: int = 300
    batch_rays: int = 2048
    num_samples: int = 64
    lr: float = 0.1
    lr_final: float = 0.01
    grow_at: tuple[float, ...] = (0.3,)
    rgb_weight: float = 1.0
    mask_weight: float = 1.0
    tv_weight: float = 1e-5
    distortion_weight: float = 0.01
    entropy_weight: float = 0.0
    random_background: bool = True
    hull_share: float = 0.9
    occupancy_resolution: int = 48
    occupancy_every: int = 16
    occupancy_warmup: int = 0
    skipping: bool = True
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_rays", "num_samples", "occupancy_resolution", "occupancy_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"fit {name} must be a positive integer, got {v!r}")
        if isinstance(self.occupancy_warmup, bool) or not isinstance(self.occupancy_warmup, int) or self.occupancy_warmup < 0:
            raise ValueError(f"fit occupancy_warmup must be an integer >= 0, got {self.occupancy_warmup!r}")
        for name in ("lr", "lr_final", "rgb_weight", "mask_weight", "tv_weight", "distortion_weight", "entropy_weight"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"fit {name} must be a finite number >= 0, got {v!r}")
        if not self.lr > 0 or not self.lr_final > 0:
            raise ValueError(f"fit lr and lr_final must be > 0, got {self.lr}, {self.lr_final}")
        if not 0.0 <= self.hull_share <= 1.0:
            raise ValueError(f"fit hull_share must be in [0, 1], got {self.hull_share}")
        if any(not 0.0 < g < 1.0 for g in self.grow_at) or list(self.grow_at) != sorted(self.grow_at):
            raise ValueError(f"fit grow_at must be increasing fractions of the steps in (0, 1), got {self.grow_at}")


@dataclass
class FitLog:
    """One logged step: total loss, its colour and silhouette parts, and the colour PSNR (dB)."""

    step: int
    loss: float
    rgb_loss: float
    mask_loss: float
    psnr: float


@dataclass
class FitResult:
    """A fitted field and how the fit went."""

    field: RadianceField
    occupancy: OccupancyGrid
    settings: FitSettings
    history: list[FitLog] = field(default_factory=list)
    seconds: float = 0.0
    samples_evaluated: float = 0.0

    @property
    def final(self) -> FitLog:
        return self.history[-1]


#: ``extra_loss(field, step) -> scalar tensor``: a plug-in loss added to every step.
ExtraLoss = Callable[[RadianceField, int], torch.Tensor]
#: ``progress(step, steps)``: called after every step.
Progress = Callable[[int, int], None]


def fit_device(device: torch.device | str) -> torch.device:
    """Where a field is fitted when the model runs on ``device``: the same device, except Apple's
    MPS, whose backend lacks ops the fit uses (float64 camera math, 3D grid sampling): the CPU.

    >>> fit_device("mps"), fit_device("cpu")
    (device(type='cpu'), device(type='cpu'))
    """
    device = torch.device(device)
    return torch.device("cpu") if device.type == "mps" else device


def growth_schedule(field_settings: FieldSettings, settings: FitSettings) -> dict[int, int]:
    """``{step: resolution}``: when a dense grid grows, geometrically from ``initial_resolution`` to ``resolution``."""
    if field_settings.kind != "dense" or field_settings.initial_resolution >= field_settings.resolution:
        return {}
    lo, hi, n = field_settings.initial_resolution, field_settings.resolution, len(settings.grow_at)
    out = {}
    for k, frac in enumerate(settings.grow_at, start=1):
        res = hi if k == n else int(round(lo * (hi / lo) ** (k / n)))
        out[max(1, int(frac * settings.steps))] = res
    return out


def sample_rays(views: PosedViews, origins: torch.Tensor, dirs: torch.Tensor, count: int, generator: torch.Generator):
    """Draw ``count`` rays: views in proportion to their weights, pixels uniformly.

    Returns ``(origins (N, 3), directions (N, 3), rgb (N, 3), alpha (N,))``.
    """
    v, h, w = views.alpha.shape
    view = torch.multinomial(views.weights, count, replacement=True, generator=generator)
    pix = torch.randint(0, h * w, (count,), generator=generator)
    flat = view * h * w + pix
    return (origins.reshape(-1, 3)[flat], dirs.reshape(-1, 3)[flat],
            views.rgb.reshape(-1, 3)[flat], views.alpha.reshape(-1)[flat])


def reference_losses(render, rgb: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(colour MSE, silhouette MSE)`` of a :class:`~zero123.threed.volume.VolumeRender` of rays
    against target straight colour ``(N, 3)`` and alpha ``(N,)``, both composited over ``background`` ``(N, 3)``."""
    target = rgb * alpha[:, None] + background * (1 - alpha[:, None])
    return (render.rgb - target).pow(2).mean(), (render.opacity - alpha).pow(2).mean()


def distortion(weights: torch.Tensor, t: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Mip-NeRF 360's distortion loss (Barron et al. 2022, eq. 15), mean over rays, in world units:
    ``sum_ij w_i w_j |t_i - t_j| + 1/3 sum_i w_i^2 delta``; small when each ray's weight sits in one
    thin interval (a sharp surface) rather than spread through a fog. ``weights``, ``t``: ``(N, S)``
    sorted along each ray; ``delta``: ``(N,)`` bin widths. The double sum is computed in O(S) as
    ``2 sum_i w_i (t_i W_<i - M_<i)`` with ``W_<i``, ``M_<i`` the running sums of ``w`` and ``w t``."""
    w_before = torch.cumsum(weights, 1) - weights
    wt_before = torch.cumsum(weights * t, 1) - weights * t
    inter = 2 * (weights * (t * w_before - wt_before)).sum(1)
    intra = weights.pow(2).sum(1) * delta / 3
    return (inter + intra).mean()


def opacity_entropy(opacity: torch.Tensor) -> torch.Tensor:
    """Mean binary entropy of opacities (0 when every ray is fully empty or fully opaque)."""
    o = opacity.clamp(1e-5, 1 - 1e-5)
    return -(o * o.log() + (1 - o) * (1 - o).log()).mean()


def visual_hull(views: PosedViews, bound: float, resolution: int, share: float = 0.9) -> torch.Tensor:
    """Space carving: ``(R, R, R)`` bool at the nodes ``-bound + i * 2 * bound / (R - 1)`` (index
    order ``[x, y, z]``), True where the weighted share of the views that see a node (it projects
    into the image, in front of the camera) and whose silhouette (alpha > 0.5, grown by one pixel)
    contains it is at least ``share``. With exact silhouettes ``share = 1`` is the visual hull; a
    lower share tolerates silhouettes that disagree (generated views)."""
    import torch.nn.functional as F

    c = torch.linspace(-bound, bound, resolution, dtype=torch.float64)
    pts = torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3)
    size = views.image_size
    sil = F.max_pool2d((views.alpha > 0.5).float()[:, None], 3, stride=1, padding=1)[:, 0] > 0
    seen = torch.zeros(len(pts), dtype=torch.float64)
    inside = torch.zeros(len(pts), dtype=torch.float64)
    for v in range(views.num_views):
        px, depth = project_points(pts, views.world_to_cams[v], views.fov_deg, size)
        col, row = torch.floor(px[:, 0]).long(), torch.floor(px[:, 1]).long()
        visible = (depth > 0) & (col >= 0) & (col < size) & (row >= 0) & (row < size)
        hit = visible & sil[v][row.clamp(0, size - 1), col.clamp(0, size - 1)]
        seen += float(views.weights[v]) * visible
        inside += float(views.weights[v]) * hit
    return ((inside >= share * seen - 1e-9) & (seen > 0)).reshape(resolution, resolution, resolution)


def fit_field(
    views: PosedViews,
    field_settings: FieldSettings = FieldSettings(),
    settings: FitSettings = FitSettings(),
    *,
    device: torch.device | str = "cpu",
    extra_loss: ExtraLoss | None = None,
    progress: Progress | None = None,
    log_every: int = 25,
) -> FitResult:
    """Fit a fresh field (:func:`~zero123.threed.field.make_field`) to ``views``.

    Args:
        views: target images, silhouettes and cameras.
        field_settings: the field (kind, box, resolutions).
        settings: the optimisation (:class:`FitSettings`).
        device: where to fit.
        extra_loss: a plug-in ``extra_loss(field, step)`` added to the loss every step.
        progress: ``progress(step, steps)`` called after every step.
        log_every: history granularity in steps (the last step is always logged).
    """
    if not isinstance(views, PosedViews):
        raise TypeError(f"views must be PosedViews, got {type(views).__name__}")
    if not isinstance(settings, FitSettings):
        raise TypeError(f"settings must be FitSettings, got {type(settings).__name__}")
    start = time.perf_counter()
    device = torch.device(device)
    gen = torch.Generator().manual_seed(settings.seed)

    # 1. Rays of every pixel of every view, once (world frame, from the camera core)
    origins, dirs = camera_rays(views.world_to_cams, views.fov_deg, views.image_size)

    # 2. Field (started from the silhouettes' visual hull), occupancy grid, optimiser, schedules
    fld = make_field(field_settings).to(device)
    if settings.hull_share > 0:
        r = getattr(fld, "resolution", field_settings.initial_resolution)
        fld.initialize_density(visual_hull(views, fld.bound, r, settings.hull_share), inside_raw=field_settings.density_init)
    occupancy = OccupancyGrid(fld.bound, settings.occupancy_resolution, device=device)
    optimizer = torch.optim.Adam(fld.parameters(), lr=settings.lr)
    grow = growth_schedule(field_settings, settings)
    decay = (settings.lr_final / settings.lr) ** (1.0 / max(settings.steps, 1))
    history: list[FitLog] = []
    evaluated = total = 0

    for step in range(settings.steps):
        # 3. Coarse to fine: grow the grid and rebuild the optimiser for the new parameters
        if step in grow and fld.grow(grow[step]):
            optimizer = torch.optim.Adam(fld.parameters(), lr=optimizer.param_groups[0]["lr"])

        # 4. Empty-space skipping: refresh the occupancy grid
        use_occupancy = settings.skipping and step >= settings.occupancy_warmup
        if use_occupancy and (step - settings.occupancy_warmup) % settings.occupancy_every == 0:
            occupancy.update(fld, step_size=fld.voxel_size / 2, generator=gen)

        # 5. A batch of rays and their backgrounds
        o, d, rgb, alpha = sample_rays(views, origins, dirs, settings.batch_rays, gen)
        o, d, rgb, alpha = (x.to(device, torch.float32) for x in (o, d, rgb, alpha))
        if settings.random_background:
            bg = torch.rand((settings.batch_rays, 3), generator=gen).to(device)
        else:
            bg = torch.ones((settings.batch_rays, 3), device=device)

        # 6. Render and score
        out = render_rays(fld, o, d, num_samples=settings.num_samples, stratified=True, background=bg,
                          occupancy=occupancy if use_occupancy else None, return_weights=bool(settings.distortion_weight),
                          min_transmittance=1e-4 if settings.skipping else 0.0, min_weight=1e-4 if settings.skipping else 0.0,
                          generator=gen)
        rgb_loss, mask_loss = reference_losses(out, rgb, alpha, bg)
        loss = settings.rgb_weight * rgb_loss + settings.mask_weight * mask_loss
        if settings.tv_weight:
            loss = loss + settings.tv_weight * fld.regularization()
        if settings.distortion_weight:
            loss = loss + settings.distortion_weight * distortion(out.weights, out.t, out.delta)
        if settings.entropy_weight:
            loss = loss + settings.entropy_weight * opacity_entropy(out.opacity)
        if extra_loss is not None:
            loss = loss + extra_loss(fld, step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the fit diverged at step {step} (loss {float(loss)}); lower FitSettings.lr")

        # 7. Step the optimiser and the learning rate
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] *= decay
        evaluated += out.evaluated
        total += out.total
        if step % log_every == 0 or step == settings.steps - 1:
            history.append(FitLog(step, float(loss.detach()), float(rgb_loss.detach()), float(mask_loss.detach()),
                                  float(-10 * math.log10(max(float(rgb_loss.detach()), 1e-10)))))
        if progress is not None:
            progress(step + 1, settings.steps)

    # 8. A final occupancy refresh, so later renders skip exactly the empty space of the result
    occupancy.update(fld, step_size=fld.voxel_size / 2, generator=gen)
    fld.eval()
    return FitResult(fld, occupancy, settings, history, time.perf_counter() - start, evaluated / max(total, 1))
