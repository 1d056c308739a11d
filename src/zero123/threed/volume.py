"""Volume rendering of a :class:`~zero123.threed.field.RadianceField` along camera rays (pure PyTorch).

Rays come from the camera core (:func:`zero123.camera.camera_rays`: world frame, Blender camera
axes, see ``docs/conventions.md``, "Cameras"). Per ray (origin ``o``, unit direction ``d``):

1. **Ray-box intersection** with the field's cube ``[-bound, bound]^3`` (slab method) gives
   ``[t_near, t_far]``; rays that miss it have opacity 0.
2. **Stratified samples**: ``S`` bins of width ``delta = (t_far - t_near) / S``, one sample per
   bin at ``t_i = t_near + (i + u_i) * delta`` with ``u_i = 0.5`` (evaluation) or ``U(0, 1)``
   (training, ``stratified=True``).
3. **Empty-space skipping**: samples in cells an :class:`OccupancyGrid` marks empty are not
   evaluated (their density is 0), which is where most of the time goes otherwise; nor are samples
   behind a surface (transmittance below ``min_transmittance``, found by a cheap density-only pass
   without gradients: early ray termination).
4. **Compositing** (the emission-absorption model, NeRF eq. 3): ``alpha_i = 1 - exp(-sigma_i
   delta)``, transmittance ``T_i = prod_{j<i} (1 - alpha_j)``, weights ``w_i = T_i alpha_i``;
   ``rgb = sum w_i c_i + (1 - sum w_i) * background``, ``opacity = sum w_i``, ``depth = sum w_i t_i /
   opacity`` (distance along the ray, world units), ``normal = sum w_i n_i`` (world frame, from
   :meth:`RadianceField.normals`; not renormalised, so its length is the opacity).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..camera import camera_rays
from .field import RadianceField


@dataclass
class VolumeRender:
    """What :func:`render_rays` / :func:`render_views` return. Leading shape ``(N,)`` for rays,
    ``(B, H, W)`` for views.

    Attributes:
        rgb: ``(..., 3)`` colour composited over the background.
        opacity: ``(...)`` accumulated opacity in [0, 1].
        depth: ``(...)`` expected distance along the ray to the surface, given a hit (world units;
            ``t_far`` of the box where the opacity is ~0).
        normals: ``(..., 3)`` opacity-weighted world normals, or None when not asked for.
        orientation: ``(...)`` the orientation penalty :func:`orientation_penalty` (with normals), else None.
        weights: ``(N, S)`` compositing weights (rays only, when asked for), else None.
        t: ``(N, S)`` sample distances along the rays (with ``weights``), else None.
        delta: ``(N,)`` bin width of each ray (with ``weights``), else None.
        evaluated: how many samples the field was queried at (after empty-space skipping).
        total: how many samples there were.
    """

    rgb: torch.Tensor
    opacity: torch.Tensor
    depth: torch.Tensor
    normals: torch.Tensor | None = None
    orientation: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    t: torch.Tensor | None = None
    delta: torch.Tensor | None = None
    evaluated: int = 0
    total: int = 0


def ray_box_intersection(
    origins: torch.Tensor, directions: torch.Tensor, bound: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slab intersection of rays ``(N, 3)`` with the cube ``[-bound, bound]^3``.

    Returns ``(t_near (N,), t_far (N,), hit (N,) bool)``; ``t_near >= 0`` (a ray starting inside
    starts at its origin).

    >>> o = torch.tensor([[2.0, 0.0, 0.0]]); d = torch.tensor([[-1.0, 0.0, 0.0]])
    >>> [round(float(v), 6) for v in ray_box_intersection(o, d, 0.5)[:2]]
    [1.5, 2.5]
    """
    safe = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
    inv = 1.0 / safe
    t0 = (-bound - origins) * inv
    t1 = (bound - origins) * inv
    t_near = torch.minimum(t0, t1).amax(-1).clamp_min(0.0)
    t_far = torch.maximum(t0, t1).amin(-1)
    hit = t_far > t_near
    return t_near, torch.where(hit, t_far, t_near), hit


class OccupancyGrid:
    """Coarse occupancy of a field for empty-space skipping (Instant-NGP / nerfacc's idea).

    A ``(R, R, R)`` grid over the field's cube; a cell is occupied when its (exponentially decayed,
    max-pooled over updates) density gives an opacity above ``alpha_threshold`` over ``step_size``,
    dilated by one cell so that surfaces can still move. It starts fully occupied.
    """

    def __init__(self, bound: float, resolution: int = 64, device: torch.device | str = "cpu"):
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
            raise ValueError(f"occupancy resolution must be an integer >= 2, got {resolution!r}")
        self.bound = float(bound)
        self.resolution = resolution
        self.density = torch.full((resolution,) * 3, float("inf"), device=device)
        self.occupied = torch.ones((resolution,) * 3, dtype=torch.bool, device=device)

    @property
    def fraction(self) -> float:
        """Share of occupied cells."""
        return float(self.occupied.float().mean())

    def cell_centers(self) -> torch.Tensor:
        """``(R^3, 3)`` world positions of the cell centres, index order ``[x, y, z]``."""
        r = self.resolution
        c = (torch.arange(r, device=self.density.device, dtype=torch.float32) + 0.5) / r * 2 * self.bound - self.bound
        return torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3)

    @torch.no_grad()
    def update(self, field: RadianceField, step_size: float, *, alpha_threshold: float = 1e-3, decay: float = 0.9,
               generator: torch.Generator | None = None, chunk: int = 2**18) -> None:
        """Re-measure the density at one jittered point per cell and re-mark the occupied cells."""
        r = self.resolution
        pts = self.cell_centers()
        jitter = (torch.rand(pts.shape, generator=generator, device="cpu").to(pts.device) - 0.5) * (2 * self.bound / r)
        pts = pts + jitter
        dens = torch.cat([field.density(pts[i:i + chunk]) for i in range(0, len(pts), chunk)]).reshape(r, r, r)
        old = torch.where(torch.isinf(self.density), dens, self.density * decay)
        self.density = torch.maximum(old, dens)
        alpha = 1.0 - torch.exp(-self.density * step_size)
        occ = (alpha > alpha_threshold).float()[None, None]
        self.occupied = F.max_pool3d(occ, 3, stride=1, padding=1)[0, 0] > 0

    def lookup(self, points: torch.Tensor) -> torch.Tensor:
        """``(N,)`` bool: whether each world point ``(N, 3)`` is in an occupied cell (False outside the cube)."""
        r = self.resolution
        scaled = (points + self.bound) * (r / (2 * self.bound))
        inside = (scaled.amin(-1) >= 0) & (scaled.amax(-1) < r)
        idx = scaled.to(torch.int64).clamp_(0, r - 1)  # truncation = floor inside the cube
        flat = (idx[:, 0] * r + idx[:, 1]) * r + idx[:, 2]
        return self.occupied.reshape(-1)[flat] & inside


def render_rays(
    field: RadianceField,
    origins: torch.Tensor,
    directions: torch.Tensor,
    *,
    num_samples: int = 128,
    stratified: bool = False,
    background: torch.Tensor | tuple[float, float, float] | None = (1.0, 1.0, 1.0),
    occupancy: OccupancyGrid | None = None,
    near: torch.Tensor | None = None,
    far: torch.Tensor | None = None,
    return_normals: bool = False,
    return_weights: bool = False,
    min_transmittance: float = 1e-4,
    min_weight: float = 1e-4,
    generator: torch.Generator | None = None,
) -> VolumeRender:
    """Render ``N`` rays through ``field`` (differentiable in the field's parameters).

    Args:
        field: the radiance field.
        origins: ``(N, 3)`` ray origins, world frame.
        directions: ``(N, 3)`` unit ray directions, world frame.
        num_samples: ``S``, samples per ray between the ray's entry into and exit from the cube.
        stratified: jitter each sample inside its bin (training) instead of the bin centre.
        background: ``(3,)`` or ``(N, 3)`` colour behind the field, or None for black (premultiplied).
        occupancy: skip samples in cells this grid marks empty.
        near, far: ``(N,)`` override of the ray interval (intersected with the cube).
        return_normals: also composite field normals (6 extra density queries per evaluated sample).
        return_weights: keep the ``(N, S)`` compositing weights.
        min_transmittance: samples behind this much transmittance are not evaluated (0 = evaluate all).
        min_weight: the colour of samples whose compositing weight is below this is not evaluated
            (taken as black; 0 = evaluate all).
        generator: for the stratified jitter.
    """
    if origins.ndim != 2 or origins.shape[-1] != 3 or directions.shape != origins.shape:
        raise ValueError(f"origins and directions must both be (N, 3), got {tuple(origins.shape)} and {tuple(directions.shape)}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    n, s = origins.shape[0], num_samples
    dev, dt = origins.device, origins.dtype

    # 1. Ray-box intersection (optionally narrowed by near/far)
    t_near, t_far, hit = ray_box_intersection(origins, directions, field.bound)
    if near is not None:
        t_near = torch.maximum(t_near, near)
    if far is not None:
        t_far = torch.minimum(t_far, far)
    hit = hit & (t_far > t_near)
    t_far = torch.where(hit, t_far, t_near)

    # 2. Stratified samples, one per bin
    delta = (t_far - t_near) / s  # (N,)
    u = torch.rand((n, s), generator=generator, device="cpu").to(dev, dt) if stratified else torch.full((n, s), 0.5, device=dev, dtype=dt)
    t = t_near[:, None] + (torch.arange(s, device=dev, dtype=dt)[None] + u) * delta[:, None]  # (N, S)
    points = origins[:, None] + t[..., None] * directions[:, None]  # (N, S, 3)

    # 3. Empty-space skipping: evaluate the field only where it can be non-empty, and (early ray
    #    termination) not behind an opaque surface: a density-only pass without gradients finds the
    #    samples whose transmittance has dropped below `min_transmittance`
    keep = hit[:, None].expand(n, s)
    if occupancy is not None:
        keep = keep & occupancy.lookup(points.reshape(-1, 3)).reshape(n, s)
    #    The same pass finds the samples whose weight is below `min_weight`: their colour is not needed.
    colored = keep
    if min_transmittance > 0 or min_weight > 0:
        with torch.no_grad():
            idx = keep.reshape(-1).nonzero().squeeze(1)
            dens = torch.zeros(n * s, device=dev, dtype=dt).index_put((idx,), field.density(points.reshape(-1, 3)[idx]).to(dt))
            tau = dens.reshape(n, s) * delta[:, None]
            before = torch.cumsum(tau, 1) - tau  # optical depth in front of each sample
            keep = keep & (before < -math.log(min_transmittance)) if min_transmittance > 0 else keep
            colored = keep & (torch.exp(-before) * (1 - torch.exp(-tau)) >= min_weight)
    flat = keep.reshape(-1).nonzero().squeeze(1)
    flat_rgb = colored.reshape(-1).nonzero().squeeze(1)
    pts = points.reshape(-1, 3)
    sigma = field.density(pts[flat])
    density = torch.zeros(n * s, device=dev, dtype=sigma.dtype).index_put((flat,), sigma).reshape(n, s)
    rgb = torch.zeros(n * s, 3, device=dev, dtype=sigma.dtype).index_put((flat_rgb,), field.color(pts[flat_rgb])).reshape(n, s, 3)

    # 4. Compositing
    weights = composite_weights(density, delta[:, None].expand(n, s))
    opacity = weights.sum(-1)
    color = (weights[..., None] * rgb).sum(1)
    if background is not None:
        bg = torch.as_tensor(background, device=dev, dtype=color.dtype)
        color = color + (1.0 - opacity)[:, None] * bg.expand(n, 3)
    depth = torch.where(opacity > 1e-6, (weights * t).sum(-1) / opacity.clamp_min(1e-6), t_far)
    normals = orientation = None
    if return_normals:
        nrm = torch.zeros(n * s, 3, device=dev, dtype=color.dtype).index_put((flat_rgb,), field.normals(pts[flat_rgb]))
        nrm = nrm.reshape(n, s, 3)
        normals = (weights[..., None] * nrm).sum(1)
        orientation = orientation_penalty(weights, nrm, directions)
    if not return_weights:
        return VolumeRender(color, opacity, depth, normals, orientation, evaluated=int(flat.numel()), total=n * s)
    return VolumeRender(color, opacity, depth, normals, orientation, weights, t, delta, int(flat.numel()), n * s)


def orientation_penalty(weights: torch.Tensor, normals: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Ref-NeRF's orientation loss per ray: ``sum_i w_i * max(0, n_i . d)^2`` for compositing weights
    ``(N, S)``, outward unit normals ``(N, S, 3)`` and ray directions ``(N, 3)``; zero when every
    visible sample's normal faces the camera, so it penalises surfaces seen from behind (the
    "inside-out" geometry of a field that explains a view with its back faces)."""
    facing_away = (normals * directions[:, None]).sum(-1).clamp_min(0.0)
    return (weights * facing_away.square()).sum(-1)


def composite_weights(density: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Compositing weights ``w_i = T_i * alpha_i`` ``(N, S)`` from densities and bin widths ``(N, S)``:
    ``alpha_i = 1 - exp(-sigma_i delta_i)``, ``T_i = exp(-sum_{j<i} sigma_j delta_j)``.

    >>> w = composite_weights(torch.tensor([[0.0, 1e9, 1e9]]), torch.ones(1, 3))
    >>> [round(float(v), 6) for v in w[0]]  # the first opaque sample takes all the weight
    [0.0, 1.0, 0.0]
    """
    tau = density * deltas
    trans = torch.exp(-torch.cumsum(torch.cat([torch.zeros_like(tau[:, :1]), tau[:, :-1]], 1), 1))
    return trans * (1.0 - torch.exp(-tau))


def render_views(
    field: RadianceField,
    world_to_cams: torch.Tensor | np.ndarray,
    fov_deg: float,
    image_size: int,
    *,
    chunk: int = 2**14,
    grad: bool = False,
    **kwargs,
) -> VolumeRender:
    """Render whole images: ``(B, 3, 4)`` world-to-camera matrices (Blender camera axes) with a
    horizontal field of view ``fov_deg`` at ``image_size`` x ``image_size`` pixels.

    Rays come from :func:`zero123.camera.camera_rays`; they are rendered in chunks of ``chunk`` rays
    (keyword arguments go to :func:`render_rays`). Without ``grad`` no autograd graph is kept.
    Returns a :class:`VolumeRender` with ``rgb`` ``(B, H, W, 3)``, ``opacity`` / ``depth`` ``(B, H, W)``.
    """
    dev = next(field.parameters()).device
    origins, dirs = camera_rays(world_to_cams, fov_deg, image_size, device=dev)
    b, h, w, _ = origins.shape
    origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    bg = kwargs.pop("background", (1.0, 1.0, 1.0))
    if isinstance(bg, torch.Tensor) and bg.ndim == 2:
        bg = bg.reshape(-1, 3)
    parts = []
    with contextlib.nullcontext() if grad else torch.no_grad():
        for i in range(0, origins.shape[0], chunk):
            part_bg = bg[i:i + chunk] if isinstance(bg, torch.Tensor) and bg.ndim == 2 else bg
            parts.append(render_rays(field, origins[i:i + chunk], dirs[i:i + chunk], background=part_bg, **kwargs))
    cat = lambda name: None if getattr(parts[0], name) is None else torch.cat([getattr(p, name) for p in parts])  # noqa: E731
    normals, orientation = cat("normals"), cat("orientation")
    return VolumeRender(
        rgb=cat("rgb").reshape(b, h, w, 3),
        opacity=cat("opacity").reshape(b, h, w),
        depth=cat("depth").reshape(b, h, w),
        normals=None if normals is None else normals.reshape(b, h, w, 3),
        orientation=None if orientation is None else orientation.reshape(b, h, w),
        evaluated=sum(p.evaluated for p in parts),
        total=sum(p.total for p in parts),
    )
