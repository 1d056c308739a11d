"""The score-distillation route: one image -> a field fitted to the input view and to Zero-1-to-3's
opinion of every other view (SDS) -> mesh -> texture.

Per optimisation step (:func:`fit_sds`, every weight and schedule a field of :class:`SDSSettings`):

* **reference view**: a batch of rays of the input view, colour and silhouette losses against a
  random background per ray (:func:`zero123.threed.fit.reference_losses`: white floaters cannot
  hide behind a white background);
* **score distillation** (after a short reference-only warm-up): a whole image rendered from a
  random camera around the input (elevation around the input's, any azimuth, the input's
  distance), at a render size that grows coarse to fine, scored by a guidance object
  (:class:`zero123.threed.guidance.Zero123Guidance`) whose loss carries ``w(t) (eps_hat - eps)``;
* **regularisers**: the grid's total variation (3D smoothness), opacity entropy and sparsity of
  the SDS render, mip-NeRF 360's distortion on the reference rays, and optionally 2D smoothness of
  the rendered normals.

The field starts from the input silhouette's visual hull (space outside the silhouette's cone
is emptied; the occupancy grid skips it from the start) or, with ``init="views"``, from the fast
route's fitted field (:func:`zero123.threed.reconstruct.reconstruct_from_image`), which SDS then
refines. :func:`reconstruct_sds` wraps the loop with the input's preparation, the elevation
(given or estimated, :func:`zero123.threed.elevation.estimate_elevation`), and part 1's mesh and
texture; the result is a :class:`~zero123.threed.reconstruct.Reconstruction` that
:func:`zero123.threed.export.write_reconstruction` writes like the other routes.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..camera import DEFAULT_INPUT_DISTANCE, camera_rays, world_to_cams_from_spherical
from .field import FieldSettings, RadianceField, make_field
from .fit import (DEFAULT_FOV_DEG, FitLog, FitResult, FitSettings, PosedViews, distortion, growth_schedule,
                  opacity_entropy, reference_losses, sample_rays, visual_hull)
from .guidance import GuidanceSettings, SDSOutput
from .mesh import MeshSettings
from .texture import TextureSettings
from .volume import OccupancyGrid, render_rays, render_views

#: ``guidance(images (B, 3, H, W) in [0, 1], world_to_cams (B, 3, 4), step, generator=) -> SDSOutput``.
Guidance = Callable[..., SDSOutput]
INITS: tuple[str, ...] = ("hull", "views")


def _positive_int(name: str, v, minimum: int = 1) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"sds {name} must be an integer >= {minimum}, got {v!r}")


def _finite(name: str, v, minimum: float = 0.0) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < minimum:
        raise ValueError(f"sds {name} must be a finite number >= {minimum:g}, got {v!r}")


@dataclass(frozen=True)
class SDSSettings:
    """Every weight and schedule of the SDS route.

    Attributes:
        steps: optimisation steps (one reference sub-step and, after the warm-up, one SDS render each).
        warmup_steps: first steps with the reference-view losses only.
        lr / lr_final: Adam learning rate at the start and the end (exponential decay).
        ref_size: the input view's side in the reference losses (pixels).
        ref_batch_rays: reference rays per step.
        num_samples: samples per ray.
        render_sizes / render_size_at: the SDS render's side, coarse to fine: ``render_sizes[k + 1]``
            from the fraction ``render_size_at[k]`` of the steps on (renders are resized to the
            model's resolution before encoding).
        sds_batch: random cameras per SDS step.
        elevation_range: the random cameras' elevation change from the input's, degrees (low, high);
            absolute elevations are kept within ``elevation_limits``.
        elevation_limits: (low, high) absolute elevation of the random cameras, degrees.
        azimuth_range: the random cameras' azimuth change, degrees.
        sds_weight / rgb_weight / mask_weight: loss weights (threestudio's ratios by default).
        tv_weight / entropy_weight / sparsity_weight / distortion_weight / normal_smoothness_weight /
        orientation_weight: regulariser weights (0 = off; normal smoothness and orientation (Ref-NeRF's
            penalty on visible normals facing away from the camera,
            :func:`zero123.threed.volume.orientation_penalty`) cost six density queries per sample).
        random_background: a random background colour per reference ray (else white).
        guidance: the guidance's settings (CFG scale, annealed t range).
        field: the field (dense grid by default; its ``bound`` is set from the input silhouette).
        mesh / texture: extraction and baking (part 1's).
        hull_share: the input silhouette's visual-hull start (0 = off, start everywhere as usual).
        hull_radius: the start is that hull cut by a ball of this radius (a share of the field's
            bound; a one-view hull is a prism through the whole box, the ball assumes the object is
            about as deep as it is wide; 0 = no cut).
        occupancy_resolution / occupancy_every: empty-space skipping grid and its refresh period.
        distance: the input camera's distance from the object's centre (world units).
        seed: the rays, cameras, timesteps and noise.
    """

    steps: int = 300
    warmup_steps: int = 30
    lr: float = 0.1
    lr_final: float = 0.01
    ref_size: int = 64
    ref_batch_rays: int = 1024
    num_samples: int = 48
    render_sizes: tuple[int, ...] = (32, 48)
    render_size_at: tuple[float, ...] = (0.5,)
    sds_batch: int = 1
    elevation_range: tuple[float, float] = (-20.0, 40.0)
    elevation_limits: tuple[float, float] = (-30.0, 80.0)
    azimuth_range: tuple[float, float] = (-180.0, 180.0)
    sds_weight: float = 0.1
    rgb_weight: float = 500.0
    mask_weight: float = 50.0
    tv_weight: float = 0.005
    entropy_weight: float = 0.1
    sparsity_weight: float = 0.1
    distortion_weight: float = 1.0
    normal_smoothness_weight: float = 0.0
    orientation_weight: float = 0.0
    random_background: bool = True
    guidance: GuidanceSettings = GuidanceSettings(anneal_steps=200)
    field: FieldSettings = FieldSettings(resolution=48, initial_resolution=24)
    mesh: MeshSettings = MeshSettings(resolution=96)
    texture: TextureSettings = TextureSettings(size=512)
    hull_share: float = 1.0
    hull_radius: float = 0.8
    occupancy_resolution: int = 32
    occupancy_every: int = 16
    distance: float = DEFAULT_INPUT_DISTANCE
    seed: int = 0

    def __post_init__(self):
        _positive_int("steps", self.steps)
        for name in ("warmup_steps",):
            _positive_int(name, getattr(self, name), 0)
        for name in ("ref_size", "ref_batch_rays", "num_samples", "sds_batch", "occupancy_resolution", "occupancy_every"):
            _positive_int(name, getattr(self, name))
        if self.warmup_steps >= self.steps:
            raise ValueError(f"sds warmup_steps ({self.warmup_steps}) must be below steps ({self.steps})")
        for name in ("sds_weight", "rgb_weight", "mask_weight", "tv_weight", "entropy_weight", "sparsity_weight",
                     "distortion_weight", "normal_smoothness_weight", "orientation_weight", "distance", "lr", "lr_final"):
            _finite(name, getattr(self, name))
        if not (self.lr > 0 and self.lr_final > 0 and self.distance > 0):
            raise ValueError(f"sds lr, lr_final and distance must be > 0, got {self.lr}, {self.lr_final}, {self.distance}")
        if not self.render_sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 8 for s in self.render_sizes):
            raise ValueError(f"sds render_sizes must be integers >= 8, got {self.render_sizes!r}")
        if len(self.render_size_at) != len(self.render_sizes) - 1 or list(self.render_size_at) != sorted(self.render_size_at) \
                or any(not 0.0 < f < 1.0 for f in self.render_size_at):
            raise ValueError(f"sds render_size_at must be {len(self.render_sizes) - 1} increasing fractions in (0, 1) "
                             f"(one per size after the first), got {self.render_size_at!r}")
        for name in ("elevation_range", "elevation_limits", "azimuth_range"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError(f"sds {name} must be (low, high) degrees with low <= high, got {getattr(self, name)!r}")
        if not -90.0 < self.elevation_limits[0] <= self.elevation_limits[1] < 90.0:
            raise ValueError(f"sds elevation_limits must lie inside (-90, 90) degrees, got {self.elevation_limits!r}")
        if not 0.0 <= self.hull_radius <= 2.0:
            raise ValueError(f"sds hull_radius must be in [0, 2] (a share of the field's bound), got {self.hull_radius}")
        if not 0.0 <= self.hull_share <= 1.0:
            raise ValueError(f"sds hull_share must be in [0, 1], got {self.hull_share}")
        for name, cls in (("guidance", GuidanceSettings), ("field", FieldSettings), ("mesh", MeshSettings), ("texture", TextureSettings)):
            if not isinstance(getattr(self, name), cls):
                raise TypeError(f"sds {name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")

    def render_size(self, step: int) -> int:
        """The SDS render's side at ``step`` (coarse to fine)."""
        k = sum(step >= int(f * self.steps) for f in self.render_size_at)
        return self.render_sizes[k]


#: Ready settings: ``fast`` (the default: 300 steps, a 24 -> 48 grid, 32 -> 48 px renders: a few
#: minutes on a 2-core CPU with the bundled model) and ``quality`` (threestudio-like lengths: 1200
#: steps, a 32 -> 96 grid, 64 -> 128 px renders, normal smoothness; for a GPU).
SDS_PRESETS: dict[str, SDSSettings] = {
    "fast": SDSSettings(),
    "quality": SDSSettings(
        steps=1200, warmup_steps=60, ref_size=128, ref_batch_rays=4096, num_samples=96, render_sizes=(64, 96, 128),
        render_size_at=(0.3, 0.6), sds_batch=2, normal_smoothness_weight=1.0,
        guidance=GuidanceSettings(anneal_steps=400),
        field=FieldSettings(resolution=96, initial_resolution=32), mesh=MeshSettings(resolution=192, max_faces=20_000),
        texture=TextureSettings(size=1024), occupancy_resolution=64,
    ),
}


def get_sds_preset(name: str) -> SDSSettings:
    """The named :data:`SDS_PRESETS` entry."""
    if name not in SDS_PRESETS:
        raise ValueError(f"preset must be one of {sorted(SDS_PRESETS)}, got {name!r}")
    return SDS_PRESETS[name]


def random_cameras(count: int, input_elevation_deg: float, settings: SDSSettings,
                   generator: torch.Generator) -> torch.Tensor:
    """``(count, 3, 4)`` world-to-camera matrices around the input (input at azimuth 0): elevation
    ``input + U(elevation_range)`` clipped to ``elevation_limits``, azimuth ``U(azimuth_range)``,
    the input's distance; all looking at the origin (z-up)."""
    u = torch.rand((2, count), generator=generator, dtype=torch.float64)
    (e_lo, e_hi), (a_lo, a_hi) = settings.elevation_range, settings.azimuth_range
    elev = (input_elevation_deg + e_lo + (e_hi - e_lo) * u[0]).clamp(*settings.elevation_limits)
    az = a_lo + (a_hi - a_lo) * u[1]
    return world_to_cams_from_spherical(torch.deg2rad(90.0 - elev), torch.deg2rad(az), torch.full((count,), settings.distance,
                                                                                                   dtype=torch.float64))


def normal_smoothness(normals: torch.Tensor, opacity: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring rendered normals ``(B, H, W, 3)`` where both pixels
    are covered (weighted by the product of their opacities ``(B, H, W)``)."""
    dx = (normals[:, :, 1:] - normals[:, :, :-1]).pow(2).sum(-1) * (opacity[:, :, 1:] * opacity[:, :, :-1]).detach()
    dy = (normals[:, 1:] - normals[:, :-1]).pow(2).sum(-1) * (opacity[:, 1:] * opacity[:, :-1]).detach()
    return dx.mean() + dy.mean()


@dataclass
class SDSLog(FitLog):
    """A logged step: :class:`~zero123.threed.fit.FitLog` plus the SDS loss, the t range and the render side."""

    sds_loss: float = 0.0
    t_range: tuple[int, int] = (0, 0)
    render_size: int = 0
    nonfinite: int = 0


def fit_sds(reference: PosedViews, guidance: Guidance, input_elevation_deg: float, settings: SDSSettings = SDSSettings(),
            *, init_field: RadianceField | None = None, device: torch.device | str = "cpu",
            progress: Callable[[int, int], None] | None = None, log_every: int = 25) -> FitResult:
    """Fit a field to one reference view plus score distillation from random cameras.

    Args:
        reference: the input view (its first view is the input camera) at any size (resized to
            ``settings.ref_size``).
        guidance: scores renders (see :data:`Guidance`; :class:`zero123.threed.guidance.Zero123Guidance`).
        input_elevation_deg: the input view's elevation; random cameras are drawn around it.
        settings: :class:`SDSSettings` (its ``field`` must have the box the object fits in).
        init_field: start from this field (copied) instead of a fresh one from the visual hull.
        device: where to fit.
        progress: ``progress(step, steps)`` after every step.
        log_every: history granularity.
    """
    if not isinstance(reference, PosedViews):
        raise TypeError(f"reference must be PosedViews, got {type(reference).__name__}")
    if not isinstance(settings, SDSSettings):
        raise TypeError(f"settings must be SDSSettings, got {type(settings).__name__}")
    start = time.perf_counter()
    device = torch.device(device)
    gen = torch.Generator().manual_seed(settings.seed)
    ref = reference.resized(settings.ref_size)

    # 1. Rays of every reference pixel, once
    origins, dirs = camera_rays(ref.world_to_cams, ref.fov_deg, ref.image_size)

    # 2. The field: the given one, or a fresh one emptied outside the silhouette's visual hull
    if init_field is not None:
        fld = copy.deepcopy(init_field).to(device).train()
        for p in fld.parameters():
            p.requires_grad_(True)
    else:
        fld = make_field(settings.field).to(device)
        if settings.hull_share > 0:
            r = getattr(fld, "resolution", settings.field.initial_resolution)
            inside = visual_hull(ref, fld.bound, r, settings.hull_share)
            if settings.hull_radius:
                c = torch.linspace(-fld.bound, fld.bound, r, dtype=torch.float64)
                nodes = torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1)
                inside = inside & (nodes.norm(dim=-1) <= settings.hull_radius * fld.bound)
            fld.initialize_density(inside, inside_raw=settings.field.density_init)
    occupancy = OccupancyGrid(fld.bound, settings.occupancy_resolution, device=device)
    optimizer = torch.optim.Adam(fld.parameters(), lr=settings.lr)
    grow = growth_schedule(fld.settings, FitSettings(steps=settings.steps, grow_at=(0.3,))) if init_field is None else {}
    decay = (settings.lr_final / settings.lr) ** (1.0 / settings.steps)
    history: list[SDSLog] = []
    evaluated = total = 0

    for step in range(settings.steps):
        # 3. Coarse to fine grid, occupancy refresh
        if step in grow and fld.grow(grow[step]):
            optimizer = torch.optim.Adam(fld.parameters(), lr=optimizer.param_groups[0]["lr"])
        if step % settings.occupancy_every == 0:
            occupancy.update(fld, step_size=fld.voxel_size / 2, generator=gen)

        # 4. Reference view: colour and silhouette over random backgrounds, distortion
        o, d, rgb, alpha = (x.to(device, torch.float32) for x in sample_rays(ref, origins, dirs, settings.ref_batch_rays, gen))
        bg = torch.rand((len(o), 3), generator=gen).to(device) if settings.random_background else torch.ones((len(o), 3), device=device)
        out = render_rays(fld, o, d, num_samples=settings.num_samples, stratified=True, background=bg, occupancy=occupancy,
                          return_weights=bool(settings.distortion_weight), generator=gen)
        rgb_loss, mask_loss = reference_losses(out, rgb, alpha, bg)
        loss = settings.rgb_weight * rgb_loss + settings.mask_weight * mask_loss
        if settings.distortion_weight:
            loss = loss + settings.distortion_weight * distortion(out.weights, out.t, out.delta)
        if settings.tv_weight:
            loss = loss + settings.tv_weight * fld.regularization()
        evaluated, total = evaluated + out.evaluated, total + out.total

        # 5. Score distillation from random cameras (after the warm-up), with its regularisers
        sds_value, size, nonfinite = 0.0, 0, 0
        if step >= settings.warmup_steps:
            size = settings.render_size(step)
            cams = random_cameras(settings.sds_batch, input_elevation_deg, settings, gen)
            view = render_views(fld, cams, ref.fov_deg, size, grad=True, num_samples=settings.num_samples, stratified=True,
                                occupancy=occupancy, return_normals=bool(settings.normal_smoothness_weight or settings.orientation_weight),
                                generator=gen)
            sds = guidance(view.rgb.permute(0, 3, 1, 2), cams, step - settings.warmup_steps, generator=gen)
            sds_value, nonfinite = float(sds.loss.detach()), sds.nonfinite
            loss = loss + settings.sds_weight * sds.loss
            if settings.entropy_weight:
                loss = loss + settings.entropy_weight * opacity_entropy(view.opacity)
            if settings.sparsity_weight:
                loss = loss + settings.sparsity_weight * view.opacity.mean()
            if settings.normal_smoothness_weight:
                loss = loss + settings.normal_smoothness_weight * normal_smoothness(view.normals, view.opacity)
            if settings.orientation_weight:
                loss = loss + settings.orientation_weight * view.orientation.mean()
            evaluated, total = evaluated + view.evaluated, total + view.total
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the SDS fit diverged at step {step} (loss {float(loss)}); lower SDSSettings.lr")

        # 6. Step the optimiser and the learning rate
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] *= decay
        if step % log_every == 0 or step == settings.steps - 1:
            rl = float(rgb_loss.detach())
            t_range = guidance.timestep_range(step - settings.warmup_steps) if hasattr(guidance, "timestep_range") and size else (0, 0)
            history.append(SDSLog(step, float(loss.detach()), rl, float(mask_loss.detach()), -10 * math.log10(max(rl, 1e-10)),
                                  sds_value, t_range, size, nonfinite))
        if progress is not None:
            progress(step + 1, settings.steps)

    # 7. A final occupancy refresh for later renders
    occupancy.update(fld, step_size=fld.voxel_size / 2, generator=gen)
    fld.eval()
    fit_settings = FitSettings(steps=settings.steps, batch_rays=settings.ref_batch_rays, num_samples=settings.num_samples,
                               lr=settings.lr, lr_final=settings.lr_final, seed=settings.seed)
    return FitResult(fld, occupancy, fit_settings, history, time.perf_counter() - start, evaluated / max(total, 1))


def reconstruct_sds(pipe, image, *, elevation_deg: float | str = "auto", settings: SDSSettings = SDSSettings(),
                    init: str = "hull", seed: int = 0, device: torch.device | str = "cpu", progress=None,
                    preprocessing=None, elevation_settings=None, init_settings=None):
    """The SDS route: one image -> field (reference view + Zero-1-to-3 score distillation) -> mesh -> texture.

    Args:
        pipe: a :class:`zero123.Zero123Pipeline`.
        image: the input photo (path, PIL image, array, or a :class:`zero123.nvs.PreparedInput`).
        elevation_deg: the input view's elevation above the equator in degrees, or ``"auto"``
            (estimated from the image with the model: :func:`zero123.threed.elevation.estimate_elevation`).
        settings: :class:`SDSSettings` (``settings.seed`` is replaced by ``seed``).
        init: ``"hull"`` (start from the input silhouette's visual hull) or ``"views"`` (start
            from the fast route's fitted field, then refine with SDS).
        seed: seeds the fit (and the fast route's generated views with ``init="views"``).
        device: where the field is fitted.
        progress: ``progress(stage, done, total)``; stages "elevation", "generate"/"fit" (init
            views), "sds", "mesh", "texture".
        preprocessing: :class:`zero123.nvs.Preprocessing` (default: cut out and recentre).
        elevation_settings: :class:`zero123.threed.elevation.ElevationSettings` for ``"auto"``.
        init_settings: :class:`zero123.threed.reconstruct.ImageRouteSettings` of the fast route
            for ``init="views"`` (default: its defaults with ``preprocessing`` and the distance).

    Returns:
        a :class:`~zero123.threed.reconstruct.Reconstruction` with ``extra["route"] == "sds"``.
    """
    from ..nvs import Preprocessing, prepare_input
    from .guidance import Zero123Guidance
    from .mesh import extract_mesh
    from .reconstruct import (ImageRouteSettings, ProjectedImage, Reconstruction, ReconstructSettings, alpha_from_white,
                              field_bound_from_mask, input_camera, reconstruct_from_image, silhouette_iou)
    from .texture import bake_texture

    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if not isinstance(settings, SDSSettings):
        raise TypeError(f"settings must be SDSSettings, got {type(settings).__name__}")
    settings = dataclasses.replace(settings, seed=int(seed))
    timings: dict[str, float] = {}
    start = time.perf_counter()
    notify = progress or (lambda stage, done, total: None)
    preprocessing = Preprocessing() if preprocessing is None else preprocessing

    # 1. The input: cut out and recentred on white, with its silhouette
    t = time.perf_counter()
    prepared = image if hasattr(image, "image") and hasattr(image, "mask") else prepare_input(image, preprocessing)
    input_rgb = np.asarray(prepared.image.convert("RGB"), np.float32) / 255.0
    mask = prepared.mask if prepared.mask is not None else alpha_from_white(input_rgb[None])[0] > 0.5
    timings["preprocess"] = time.perf_counter() - t

    # 2. The input elevation: given, or estimated with the model
    estimate = None
    if isinstance(elevation_deg, str):
        if elevation_deg != "auto":
            raise ValueError(f"elevation must be a number of degrees or 'auto', got {elevation_deg!r}")
        from .elevation import ElevationSettings, estimate_elevation

        t = time.perf_counter()
        estimate = estimate_elevation(pipe, prepared, elevation_settings or ElevationSettings(), seed=seed,
                                      progress=lambda done, total: notify("elevation", done, total))
        elevation = estimate.elevation_deg
        timings["elevation"] = time.perf_counter() - t
    else:
        elevation = float(elevation_deg)
    w2c_in = input_camera(elevation, settings.distance)

    # 3. The field's box from the silhouette; optionally the fast route's field as the start
    bound = field_bound_from_mask(mask, DEFAULT_FOV_DEG, settings.distance)
    settings = dataclasses.replace(settings, field=dataclasses.replace(settings.field, bound=bound))
    init_field = None
    if init == "views":
        route = init_settings or ImageRouteSettings(preprocessing=preprocessing, distance=settings.distance)
        if not isinstance(route, ImageRouteSettings):
            raise TypeError(f"init_settings must be ImageRouteSettings, got {type(route).__name__}")
        if route.distance != settings.distance:
            raise ValueError(f"init_settings.distance ({route.distance}) must equal the SDS settings' distance ({settings.distance})")
        first = reconstruct_from_image(pipe, prepared, elevation_deg=elevation, settings=route, seed=seed, device=device,
                                       progress=lambda stage, done, total: notify(stage, done, total) if stage in ("generate", "fit") else None)
        init_field = first.fit.field
        timings.update({k: first.timings[k] for k in ("generate", "fit") if k in first.timings})
        settings = dataclasses.replace(settings, field=init_field.settings)

    # 4. Score distillation with the reference view
    reference = PosedViews(torch.from_numpy(input_rgb)[None], torch.from_numpy(mask.astype(np.float32))[None], w2c_in[None])
    guidance = Zero123Guidance(pipe, prepared.image, w2c_in, settings.guidance)
    fit = fit_sds(reference, guidance, elevation, settings, init_field=init_field, device=device,
                  progress=lambda i, n: notify("sds", i, n))
    timings["sds"] = fit.seconds

    # 5. Mesh: the threshold that best reproduces the input silhouette
    t = time.perf_counter()
    notify("mesh", 0, 1)
    ref_masks = reference.resized(settings.mesh.silhouette_size).alpha
    mesh = extract_mesh(fit.field, w2c_in[None], DEFAULT_FOV_DEG, settings.mesh, reference_masks=ref_masks)
    timings["mesh"] = time.perf_counter() - t
    notify("mesh", 1, 1)

    # 6. Texture: the field's colour with the input photo projected onto the texels it sees
    t = time.perf_counter()
    notify("texture", 0, 1)
    textured = bake_texture(mesh, fit.field, settings.texture,
                            [ProjectedImage(input_rgb, w2c_in, DEFAULT_FOV_DEG, mask.astype(np.float32), 1.0)])
    timings["texture"] = time.perf_counter() - t
    notify("texture", 1, 1)
    timings["total"] = time.perf_counter() - start

    chain = ReconstructSettings(field=settings.field, fit=fit.settings, mesh=settings.mesh, texture=settings.texture,
                                image_size=settings.ref_size)
    rec = Reconstruction(reference.resized(settings.ref_size), fit, mesh, textured, chain, timings,
                         input_world_to_cam=w2c_in, input_mask=mask)
    last = fit.history[-1]
    rec.extra = {
        "route": "sds", "init": init, "seed": int(seed), "elevation_deg": float(elevation),
        "elevation_source": "given" if estimate is None else "estimated",
        **({"elevation_estimate": estimate.report()} if estimate is not None else {}),
        "sds": dataclasses.asdict(settings), "preprocess": prepared.method, "distance": settings.distance, "field_bound": bound,
        "sds_final": {"sds_loss": last.sds_loss, "t_range": list(last.t_range), "render_size": last.render_size,
                      "nonfinite_total": int(sum(h.nonfinite for h in fit.history))},
        "input_silhouette_iou": silhouette_iou(mesh, w2c_in, mask),
    }
    return rec
