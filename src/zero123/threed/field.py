"""Radiance fields over the cube ``[-bound, bound]^3`` (world frame, z-up): density and colour.

Two kinds, one interface (:class:`RadianceField`):

* :class:`DenseGrid` (the default): a voxel grid of raw density and raw colour, trilinearly
  interpolated (``torch.nn.functional.grid_sample``) and activated AFTER interpolation
  (``density = density_scale * softplus(raw)``, ``rgb = sigmoid(raw)``), which gives sharp
  surfaces from a coarse grid (DVGO's "post-activation"). It grows coarse to fine
  (:meth:`DenseGrid.grow`) and has a total-variation regulariser.
* :class:`HashGrid`: a multi-resolution hash encoding (Instant-NGP: ``L`` levels, ``F`` features
  per level, a table of ``2^T`` entries per level, geometric level resolutions) followed by a small
  MLP, in plain PyTorch (no tiny-cuda-nn). Slower than the grid on a CPU; useful when the object
  needs more detail than a dense grid can hold.

Colour is view-independent (albedo-like radiance): it is what the texture baker reads.
Densities are in 1 / world units: a ray through density ``sigma`` over a length ``delta`` has
opacity ``1 - exp(-sigma * delta)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

FieldKind = Literal["dense", "hash"]
FIELD_KINDS: tuple[str, ...] = ("dense", "hash")

#: Hash primes of Instant-NGP (Mueller et al. 2022, section 3): the first is 1 for cache coherence.
_HASH_PRIMES = (1, 2654435761, 805459861)


@dataclass(frozen=True)
class FieldSettings:
    """How to build a field (:func:`make_field`).

    Attributes:
        kind: ``"dense"`` (voxel grid, default) or ``"hash"`` (multi-resolution hash grid + MLP).
        bound: half side of the cube the field lives in, world units (objects normalised to a unit
            bounding box fit in ``bound = 0.5``; the default leaves a margin).
        resolution: dense: the final grid side; hash: the finest level's resolution.
        initial_resolution: dense only: the grid side before coarse-to-fine growth.
        density_scale: density = ``density_scale * softplus(raw)``; ~1/voxel size makes one unit of
            raw density about one unit of optical depth per voxel.
        density_init: initial raw density (softplus(-4) * 50 = 0.9 / world unit: nearly empty).
        blob_density / blob_radius: a prior added to the raw density, ``blob_density * (1 - |x| /
            blob_radius)`` (Magic3D's "blob" initialisation for score distillation; 0 = off).
        hash_levels / hash_features / hash_table_log2 / hash_base_resolution / hidden: hash grid only.
    """

    kind: FieldKind = "dense"
    bound: float = 0.6
    resolution: int = 64
    initial_resolution: int = 32
    density_scale: float = 50.0
    density_init: float = -4.0
    blob_density: float = 0.0
    blob_radius: float = 0.5
    hash_levels: int = 16
    hash_features: int = 2
    hash_table_log2: int = 17
    hash_base_resolution: int = 16
    hidden: int = 64

    def __post_init__(self):
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"field kind must be one of {FIELD_KINDS}, got {self.kind!r}")
        if not (isinstance(self.bound, (int, float)) and math.isfinite(self.bound) and self.bound > 0):
            raise ValueError(f"field bound must be a positive number (half side of the box), got {self.bound!r}")
        for name in ("resolution", "initial_resolution", "hash_levels", "hash_features", "hash_base_resolution", "hidden"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise ValueError(f"field {name} must be an integer >= 2, got {v!r}")
        if self.initial_resolution > self.resolution:
            raise ValueError(f"field initial_resolution ({self.initial_resolution}) must not exceed resolution ({self.resolution})")
        if not 10 <= self.hash_table_log2 <= 24:
            raise ValueError(f"field hash_table_log2 must be in [10, 24], got {self.hash_table_log2}")
        if not self.density_scale > 0:
            raise ValueError(f"field density_scale must be > 0, got {self.density_scale}")
        if not self.blob_radius > 0:
            raise ValueError(f"field blob_radius must be > 0, got {self.blob_radius}")


@dataclass
class FieldSample:
    """Field values at ``N`` points: ``density`` ``(N,)`` (1 / world units, >= 0), ``rgb`` ``(N, 3)`` in [0, 1]."""

    density: torch.Tensor
    rgb: torch.Tensor


class RadianceField(nn.Module):
    """Interface of the fields: density and colour at world points inside ``[-bound, bound]^3``."""

    bound: float
    settings: FieldSettings

    def forward(self, points: torch.Tensor) -> FieldSample:
        """Density and colour at ``points`` ``(N, 3)`` (world frame)."""
        raw_density, raw_rgb = self._raw(points)
        return FieldSample(self._activate_density(raw_density, points), torch.sigmoid(raw_rgb))

    def density(self, points: torch.Tensor) -> torch.Tensor:
        """Density ``(N,)`` at ``points`` ``(N, 3)``."""
        return self._activate_density(self._raw_density(points), points)

    def color(self, points: torch.Tensor) -> torch.Tensor:
        """Colour ``(N, 3)`` in [0, 1] at ``points`` ``(N, 3)``."""
        return torch.sigmoid(self._raw(points)[1])

    def normals(self, points: torch.Tensor, eps: float | None = None) -> torch.Tensor:
        """Unit outward normals ``(N, 3)``: ``-grad(density) / |grad(density)|`` by central differences
        of step ``eps`` (default: one voxel of the finest resolution). Differentiable in the field's
        parameters (6 extra density queries; no double backward needed)."""
        eps = self.voxel_size if eps is None else eps
        offsets = torch.eye(3, device=points.device, dtype=points.dtype) * eps
        shifted = torch.cat([points[:, None] + offsets, points[:, None] - offsets], 1).reshape(-1, 3)
        d = self.density(shifted).reshape(-1, 2, 3)
        grad = (d[:, 0] - d[:, 1]) / (2 * eps)
        return -grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-8)

    @property
    def voxel_size(self) -> float:
        """World size of one cell at the field's current finest resolution."""
        return 2.0 * self.bound / (self.settings.resolution - 1)

    def regularization(self) -> torch.Tensor:
        """A smoothness penalty of the parameters (scalar; zero when the kind has none)."""
        return torch.zeros((), device=self._device())

    def grow(self, resolution: int) -> bool:
        """Raise the resolution (coarse to fine). Returns True when parameters were replaced (the
        optimiser must then be rebuilt). Fields without growth return False."""
        return False

    def initialize_density(self, inside: torch.Tensor, inside_raw: float = 0.0, outside_raw: float = -8.0) -> bool:
        """Start from a shape: raw density ``inside_raw`` where ``inside`` (``(R, R, R)`` bool at the
        nodes ``-bound + i * 2 * bound / (R - 1)``, index order ``[x, y, z]``, R = the current
        resolution) and ``outside_raw`` elsewhere. Returns False for fields that cannot (the hash grid)."""
        return False

    # ------------------------------------------------------------------ internals
    def _activate_density(self, raw: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        s = self.settings
        if s.blob_density:
            raw = raw + s.blob_density * (1.0 - points.norm(dim=-1) / s.blob_radius)
        return s.density_scale * F.softplus(raw)

    def _normalized(self, points: torch.Tensor) -> torch.Tensor:
        return points / self.bound

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _raw(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _raw_density(self, points: torch.Tensor) -> torch.Tensor:
        return self._raw(points)[0]


class DenseGrid(RadianceField):
    """Voxel grid of raw density ``(1, 1, R, R, R)`` and raw colour (three ``(1, 1, R, R, R)`` grids).

    Grid node ``[z, y, x]`` sits at world ``-bound + (x, y, z) * 2 * bound / (R - 1)`` (the layout
    ``grid_sample`` reads with ``align_corners=True``); points outside the cube read the border cells.
    """

    def __init__(self, settings: FieldSettings = FieldSettings()):
        super().__init__()
        self.settings = settings
        self.bound = float(settings.bound)
        r = settings.initial_resolution
        self.raw_density = nn.Parameter(torch.full((1, 1, r, r, r), float(settings.density_init)))
        # one single-channel grid (and parameter) per colour channel: grid_sample's CPU backward is
        # several times faster per channel for C = 1 than for C = 3
        self.raw_rgb = nn.ParameterList([nn.Parameter(torch.zeros((1, 1, r, r, r))) for _ in range(3)])

    @property
    def resolution(self) -> int:
        return int(self.raw_density.shape[-1])

    @property
    def voxel_size(self) -> float:
        return 2.0 * self.bound / (self.resolution - 1)

    def _sample(self, grid: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Trilinear lookup of a ``(1, 1, R, R, R)`` grid at ``points`` ``(N, 3)`` -> ``(N,)``."""
        coords = self._normalized(points).reshape(1, -1, 1, 1, 3).to(grid.dtype)
        return F.grid_sample(grid, coords, mode="bilinear", padding_mode="border", align_corners=True).reshape(-1)

    def _raw(self, points):
        return self._sample(self.raw_density, points), self._raw_color(points)

    def _raw_color(self, points):
        return torch.stack([self._sample(g, points) for g in self.raw_rgb], -1)

    def _raw_density(self, points):
        return self._sample(self.raw_density, points)

    def color(self, points):
        return torch.sigmoid(self._raw_color(points))

    def regularization(self) -> torch.Tensor:
        """Mean squared difference of neighbouring raw densities (total variation), plus a tenth of
        it for colour: keeps unseen cells smooth instead of noisy."""
        return _total_variation(self.raw_density) + 0.1 * sum(_total_variation(g) for g in self.raw_rgb)

    def initialize_density(self, inside: torch.Tensor, inside_raw: float = 0.0, outside_raw: float = -8.0) -> bool:
        r = self.resolution
        if tuple(inside.shape) != (r, r, r):
            raise ValueError(f"inside must be ({r}, {r}, {r}) to match the grid, got {tuple(inside.shape)}")
        with torch.no_grad():
            zyx = inside.to(self.raw_density.device).permute(2, 1, 0)
            self.raw_density[0, 0] = torch.where(zyx, torch.tensor(inside_raw), torch.tensor(outside_raw))
        return True

    def grow(self, resolution: int) -> bool:
        """Trilinearly resample both grids to ``resolution`` (same box, same function up to the
        interpolation), replacing the parameters."""
        if resolution <= self.resolution:
            return False
        def up(grid: torch.Tensor) -> nn.Parameter:
            with torch.no_grad():
                return nn.Parameter(F.interpolate(grid.data, size=(resolution,) * 3, mode="trilinear", align_corners=True))

        self.raw_density = up(self.raw_density)
        self.raw_rgb = nn.ParameterList([up(g) for g in self.raw_rgb])
        return True


def _total_variation(grid: torch.Tensor) -> torch.Tensor:
    dz = (grid[:, :, 1:] - grid[:, :, :-1]).pow(2).mean()
    dy = (grid[:, :, :, 1:] - grid[:, :, :, :-1]).pow(2).mean()
    dx = (grid[..., 1:] - grid[..., :-1]).pow(2).mean()
    return dx + dy + dz


class HashGrid(RadianceField):
    """Multi-resolution hash encoding + MLP (Instant-NGP), pure PyTorch.

    Level ``l`` has resolution ``N_l = floor(N_min * b^l)`` with ``b = exp((ln N_max - ln N_min) / (L - 1))``;
    a level whose ``(N_l + 1)^3`` nodes fit the table is indexed densely, finer ones through the
    spatial hash ``xor_i(x_i * pi_i) mod 2^T``. Features (initialised U(-1e-4, 1e-4)) are
    trilinearly interpolated per level, concatenated, and mapped by a 2-layer MLP to raw density and
    raw colour.
    """

    def __init__(self, settings: FieldSettings = FieldSettings(kind="hash")):
        super().__init__()
        self.settings = settings
        self.bound = float(settings.bound)
        s = settings
        n_min, n_max, levels = s.hash_base_resolution, max(s.resolution, s.hash_base_resolution + 1), s.hash_levels
        growth = math.exp((math.log(n_max) - math.log(n_min)) / max(levels - 1, 1))
        self.table_size = 2**s.hash_table_log2
        self.level_resolutions = [int(math.floor(n_min * growth**i)) for i in range(levels)]
        sizes = [min(self.table_size, (n + 1) ** 3) for n in self.level_resolutions]
        self.register_buffer("level_offsets", torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()]), persistent=False)
        self.tables = nn.Parameter(torch.empty(sum(sizes), s.hash_features).uniform_(-1e-4, 1e-4))
        self.mlp = nn.Sequential(nn.Linear(levels * s.hash_features, s.hidden), nn.ReLU(), nn.Linear(s.hidden, 4))
        with torch.no_grad():  # start nearly empty and grey, like the dense grid
            self.mlp[2].bias.copy_(torch.tensor([float(s.density_init), 0.0, 0.0, 0.0]))

    def _encode(self, points: torch.Tensor) -> torch.Tensor:
        x01 = (self._normalized(points).clamp(-1, 1) + 1) / 2  # (N, 3) in [0, 1]
        corners = torch.tensor([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)], device=points.device)  # (8, 3)
        primes = torch.tensor(_HASH_PRIMES, device=points.device)
        feats = []
        for level, res in enumerate(self.level_resolutions):
            pos = x01 * res
            base = pos.floor().long().clamp(0, res - 1)
            frac = pos - base
            idx = base[:, None, :] + corners[None]  # (N, 8, 3)
            if (res + 1) ** 3 <= self.table_size:  # dense level
                flat = (idx[..., 0] * (res + 1) + idx[..., 1]) * (res + 1) + idx[..., 2]
            else:  # spatial hash
                h = idx * primes
                flat = (h[..., 0] ^ h[..., 1] ^ h[..., 2]) % self.table_size
            w = torch.where(corners[None].bool(), frac[:, None, :], 1 - frac[:, None, :]).prod(-1)  # (N, 8)
            entries = self.tables[int(self.level_offsets[level]) + flat]  # (N, 8, F)
            feats.append((w[..., None] * entries).sum(1))
        return torch.cat(feats, -1)

    def _raw(self, points):
        out = self.mlp(self._encode(points))
        return out[:, 0], out[:, 1:]


def make_field(settings: FieldSettings = FieldSettings()) -> RadianceField:
    """A fresh field of ``settings.kind`` (``"dense"`` or ``"hash"``)."""
    if not isinstance(settings, FieldSettings):
        raise TypeError(f"settings must be a FieldSettings, got {type(settings).__name__}")
    return DenseGrid(settings) if settings.kind == "dense" else HashGrid(settings)
