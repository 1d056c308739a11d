"""3D metrics: Chamfer distance, volume IoU and F-score between a predicted and a ground-truth mesh.

Meshes are first normalised the way the dataset renderer normalises objects
(:func:`zero123.render.mesh.normalize_vertices`: bounding-box centre at the origin, largest side 1),
so figures are in units of the object's size. ``normalize="gt"`` (default) applies the ground
truth's normalisation to both meshes, which keeps a prediction made in the ground truth's frame
where it is (a shifted or rotated prediction scores lower); ``"each"`` normalises each mesh by its
own bounding box (for predictions of unknown scale, e.g. from one image); ``"none"`` uses the
coordinates as given. Then, optionally, the prediction is aligned to the ground truth
(``alignment="icp"``: rigid ICP on surface points; the default ``"none"`` keeps the frames, which
is what proves a reconstruction is in the right frame).

* **Points**: ``points="surface"`` samples ``num_points`` points uniformly on each surface
  (area-weighted, seeded); ``points="renders"`` back-projects depth renders from
  ``render_views`` cameras on a ring at ``render_elevation`` degrees, distance ``render_distance``
  (only what a camera sees, as the SyncDreamer evaluation does) and keeps one point per
  ``voxel_downsample`` cell.
* **Chamfer distance**: ``(mean_p min_q |p - q| + mean_q min_p |q - p|) / 2`` (Euclidean, not squared).
* **F-score** at ``fscore_threshold`` tau: precision = share of predicted points within tau of the
  ground truth, recall = share of ground-truth points within tau of the prediction, ``F = 2PR / (P + R)``.
* **Volume IoU**: both meshes voxelised at ``iou_resolution``^3 cells over the unit cube
  ``[-0.5, 0.5]^3`` (the lattice extends by whole cells where a mesh reaches outside it). Voxelisation works for meshes that are not watertight: the surface is sampled
  densely and marks a shell of voxels; the outside is the set of empty voxels connected to the
  border after the shell is thickened by ``close_holes`` voxels (so holes up to that size do not
  leak), grown back by the same amount; everything else is solid.

:data:`PROTOCOLS` holds presets: ``"default"`` and ``"syncdreamer-gso30"`` (SyncDreamer's GSO-30
evaluation, docs/conventions.md, "Evaluation protocols": points from 16 depth renders at elevation 30 deg, distance 1.5, downsampled at 0.01;
volume IoU at 64^3; F-score at 0.05 added).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

from ..render.mesh import normalize_vertices

PointSource = Literal["surface", "renders"]
Normalization = Literal["gt", "each", "none"]
NORMALIZATIONS: tuple[str, ...] = ("gt", "each", "none")
Alignment = Literal["none", "icp"]
ALIGNMENTS: tuple[str, ...] = ("none", "icp")


@dataclass(frozen=True)
class MetricProtocol:
    """How two meshes are compared (see the module docstring)."""

    name: str = "default"
    points: PointSource = "surface"
    num_points: int = 30_000
    fscore_threshold: float = 0.05
    iou_resolution: int = 64
    close_holes: int = 1
    normalize: Normalization = "gt"
    alignment: Alignment = "none"
    render_views: int = 16
    render_size: int = 128
    render_elevation: float = 30.0
    render_distance: float = 1.5
    voxel_downsample: float = 0.01
    seed: int = 0

    def __post_init__(self):
        if self.points not in ("surface", "renders"):
            raise ValueError(f"points must be 'surface' or 'renders', got {self.points!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        if not (isinstance(self.fscore_threshold, (int, float)) and self.fscore_threshold > 0):
            raise ValueError(f"fscore_threshold must be > 0 (object-size units), got {self.fscore_threshold!r}")
        for name in ("num_points", "iou_resolution", "render_views", "render_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise ValueError(f"{name} must be an integer >= 2, got {v!r}")

    def replace(self, **changes) -> "MetricProtocol":
        return replace(self, **changes)


PROTOCOLS: dict[str, MetricProtocol] = {
    "default": MetricProtocol(),
    "syncdreamer-gso30": MetricProtocol(name="syncdreamer-gso30", points="renders", render_views=16, render_size=256,
                                        render_elevation=30.0, render_distance=1.5, voxel_downsample=0.01,
                                        iou_resolution=64, fscore_threshold=0.05, normalize="each"),
}


def get_metric_protocol(name: str) -> MetricProtocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown 3D protocol {name!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]


@dataclass
class MeshMetrics:
    """Scores of one prediction against one ground truth (distances in object-size units)."""

    chamfer: float
    volume_iou: float
    fscore: float
    precision: float
    recall: float
    fscore_threshold: float
    protocol: str
    normalize: str
    alignment: str

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------- mesh input
def mesh_arrays(mesh) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (V, 3) float64, faces (F, 3) int64)`` of a path (any format trimesh reads, scenes
    flattened), a ``trimesh.Trimesh``, a :class:`~zero123.render.RenderMesh`, an object with
    ``vertices``/``faces`` or a ``(vertices, faces)`` pair."""
    if isinstance(mesh, (str, os.PathLike)):
        from ..data.meshes import load_mesh

        m = load_mesh(mesh)  # checked, flattened (normalised, which the metrics redo anyway)
        return np.asarray(m.vertices, np.float64), np.asarray(m.faces, np.int64)
    if isinstance(mesh, tuple) and len(mesh) == 2:
        v, f = mesh
    elif hasattr(mesh, "vertices") and hasattr(mesh, "faces"):
        v, f = mesh.vertices, mesh.faces
    else:
        raise TypeError(f"mesh must be a path, a trimesh/RenderMesh or (vertices, faces), got {type(mesh).__name__}")
    v, f = np.asarray(v, np.float64), np.asarray(f, np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise ValueError(f"mesh must have (V, 3) vertices and (F >= 1, 3) faces, got {v.shape} and {f.shape}")
    if not np.all(np.isfinite(v)) or f.min() < 0 or f.max() >= len(v):
        raise ValueError("mesh has non-finite vertices or out-of-range face indices")
    return v, f


# ---------------------------------------------------------------------- points
def surface_points(vertices: np.ndarray, faces: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``(count, 3)`` points uniform on the surface (area-weighted faces, uniform barycentrics)."""
    rng = np.random.default_rng(seed)
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if not area.sum() > 0:
        raise ValueError("mesh has zero surface area")
    idx = rng.choice(len(faces), size=count, p=area / area.sum())
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[idx]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


def rendered_points(vertices: np.ndarray, faces: np.ndarray, protocol: MetricProtocol) -> np.ndarray:
    """Points of the visible surface: back-projected depth renders (torch renderer) from a ring of
    ``render_views`` cameras, one point kept per ``voxel_downsample`` cell."""
    import torch

    from ..camera import camera_rays, world_to_cams_from_spherical
    from ..render import DEFAULT_FOV_DEG, RenderMesh
    from ..render.torch_backend import TorchRenderer

    n = protocol.render_views
    polar = torch.full((n,), math.radians(90.0 - protocol.render_elevation), dtype=torch.float64)
    azimuth = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    w2c = world_to_cams_from_spherical(polar, azimuth, torch.full((n,), protocol.render_distance, dtype=torch.float64))
    renderer = TorchRenderer(image_size=protocol.render_size, fov_deg=DEFAULT_FOV_DEG, supersample=1)
    depth = renderer.depth(RenderMesh.from_arrays(vertices, faces), w2c.numpy())  # (n, H, W) along -z_cam
    origins, dirs = camera_rays(w2c, DEFAULT_FOV_DEG, protocol.render_size, dtype=torch.float64)
    # depth is measured along the viewing axis: the ray length is depth / cos(angle to the axis)
    axis = -w2c[:, 2, :3]  # (n, 3) viewing direction in the world
    cos = (dirs * axis[:, None, None, :]).sum(-1).numpy()
    hit = np.isfinite(depth)
    pts = origins.numpy()[hit] + dirs.numpy()[hit] * (depth[hit] / cos[hit])[:, None]
    if len(pts) == 0:
        raise ValueError("the mesh is not visible from any evaluation camera (is it normalised and centred?)")
    return voxel_downsample(pts, protocol.voxel_downsample)


def voxel_downsample(points: np.ndarray, voxel: float) -> np.ndarray:
    """One point (the mean) per occupied cell of side ``voxel``."""
    keys = np.floor(points / voxel).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, inverse.reshape(-1), points)
    return sums / counts[:, None]


def chamfer_and_fscore(pred: np.ndarray, gt: np.ndarray, threshold: float) -> tuple[float, float, float, float]:
    """``(chamfer, fscore, precision, recall)`` of two point sets ``(N, 3)``, ``(M, 3)`` (see the module docstring)."""
    from scipy.spatial import cKDTree

    d_pred = cKDTree(gt).query(pred, workers=1)[0]
    d_gt = cKDTree(pred).query(gt, workers=1)[0]
    chamfer = 0.5 * (float(d_pred.mean()) + float(d_gt.mean()))
    precision, recall = float((d_pred < threshold).mean()), float((d_gt < threshold).mean())
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return chamfer, f, precision, recall


# ---------------------------------------------------------------------- volume
def voxel_lattice(resolution: int, *point_sets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first cell index (3,), cell counts (3,))`` of the lattice of cells of side ``1 / resolution``
    aligned with the unit cube ``[-0.5, 0.5]^3``, covering the cube and every given point set."""
    lo = np.minimum.reduce([np.full(3, -0.5)] + [p.min(0) for p in point_sets])
    hi = np.maximum.reduce([np.full(3, 0.5)] + [p.max(0) for p in point_sets])
    first = np.floor((lo + 0.5) * resolution + 1e-9).astype(np.int64)
    last = np.ceil((hi + 0.5) * resolution - 1e-9).astype(np.int64)
    return first, last - first


def voxelize(vertices: np.ndarray, faces: np.ndarray, resolution: int = 64, close_holes: int = 1,
             lattice: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Bool solid occupancy (index order ``[x, y, z]``; a voxel is solid when its centre is inside)
    of a mesh on cells of side ``1 / resolution`` aligned with the unit cube: ``(R, R, R)`` over
    ``[-0.5, 0.5]^3`` by default, or over ``lattice`` (:func:`voxel_lattice`). Works for watertight
    and non-watertight meshes alike (see the module docstring)."""
    from scipy import ndimage
    from scipy.spatial import cKDTree

    first, counts = lattice if lattice is not None else (np.zeros(3, np.int64), np.full(3, resolution))
    cell = 1.0 / resolution
    # 1. A shell: every voxel a dense sampling of the surface touches (spacing <= half a voxel)
    pts, face_of = _dense_surface_samples(vertices, faces, cell / 2)
    idx = np.floor((pts + 0.5) / cell).astype(np.int64) - first
    idx = np.clip(idx, -1, counts) + 1  # +1: one voxel of padding on each side (surface outside the lattice lands there)
    shell = np.zeros(tuple(counts + 2), bool)
    shell[tuple(idx.T)] = True
    # 2. Outside = empty voxels connected to the border, computed with a thickened shell so small
    #    holes do not leak, then grown back by the same amount (not across the shell)
    thick = ndimage.binary_dilation(shell, iterations=close_holes) if close_holes else shell
    labels, _ = ndimage.label(~thick)
    faces_of_box = [labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]]
    border = np.unique(np.concatenate([f.ravel() for f in faces_of_box]))
    outside = np.isin(labels, border[border > 0])
    if close_holes:
        outside = ndimage.binary_dilation(outside, iterations=close_holes) & ~shell
    solid = ~outside
    # 3. Shell voxels next to the outside: solid when the centre is behind the nearest surface
    #    sample's face (outward normals; a mesh whose signed volume is negative is turned over)
    boundary = shell & ndimage.binary_dilation(outside)
    ii = np.argwhere(boundary)
    if len(ii):
        tri = vertices[faces]
        normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        if np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() < 0:
            normals = -normals
        centres = (ii - 1 + first + 0.5) * cell - 0.5
        nearest = cKDTree(pts).query(centres, workers=1)[1]
        behind = np.einsum("ij,ij->i", centres - pts[nearest], normals[face_of[nearest]]) <= 0
        solid[tuple(ii.T)] = behind
    return solid[1:-1, 1:-1, 1:-1]


def _dense_surface_samples(vertices: np.ndarray, faces: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points on every face on a barycentric lattice fine enough that every point of a face is
    within ``spacing`` of a sample; returns ``(points (P, 3), face index of each point (P,))``."""
    tri = vertices[faces]
    longest = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
    steps = np.maximum(1, np.ceil(longest / spacing)).astype(np.int64)
    points, owners = [], []
    for n in np.unique(steps):
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        ok = i + j <= n
        bary = np.stack([i[ok], j[ok], n - i[ok] - j[ok]], 1) / n  # (K, 3)
        ids = np.nonzero(steps == n)[0]
        per = max(1, 2_000_000 // len(bary))
        for start in range(0, len(ids), per):
            chunk = ids[start:start + per]
            points.append(np.einsum("kc,fcd->fkd", bary, tri[chunk]).reshape(-1, 3))
            owners.append(np.repeat(chunk, len(bary)))
    return np.concatenate(points), np.concatenate(owners)


def volume_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean voxel grids of the same shape."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


# ---------------------------------------------------------------------- the comparison
def align_icp(pred_vertices: np.ndarray, pred_faces: np.ndarray, gt_vertices: np.ndarray, gt_faces: np.ndarray,
              seed: int = 0) -> np.ndarray:
    """``(4, 4)`` rigid transform (rotation + translation) taking the prediction onto the ground truth
    (trimesh's ICP between surface point sets, started from the identity)."""
    import trimesh

    p = surface_points(pred_vertices, pred_faces, 5000, seed)
    g = surface_points(gt_vertices, gt_faces, 20000, seed + 1)
    matrix, _, _ = trimesh.registration.icp(p, g, initial=np.eye(4), threshold=1e-6, max_iterations=50,
                                            reflection=False, translation=True, scale=False)
    return matrix


def evaluate_mesh(pred, gt, protocol: MetricProtocol | str = "default") -> MeshMetrics:
    """Chamfer distance, volume IoU and F-score of ``pred`` against ``gt`` (see the module docstring).

    Args:
        pred, gt: meshes (paths, trimesh/RenderMesh objects or ``(vertices, faces)``).
        protocol: a :class:`MetricProtocol` or the name of one in :data:`PROTOCOLS`.
    """
    proto = get_metric_protocol(protocol) if isinstance(protocol, str) else protocol
    if not isinstance(proto, MetricProtocol):
        raise TypeError(f"protocol must be a MetricProtocol or a name in {sorted(PROTOCOLS)}, got {type(protocol).__name__}")
    pv, pf = mesh_arrays(pred)
    gv, gf = mesh_arrays(gt)
    # 1. Normalise as the dataset renderer does
    if proto.normalize == "each":
        pv, gv = normalize_vertices(pv)[0], normalize_vertices(gv)[0]
    elif proto.normalize == "gt":
        gv, center, scale = normalize_vertices(gv)
        pv = (pv - center) / scale
    # 2. Optional alignment of the prediction
    if proto.alignment == "icp":
        m = align_icp(pv, pf, gv, gf, proto.seed)
        pv = pv @ m[:3, :3].T + m[:3, 3]
    # 3. Points, then Chamfer and F-score
    if proto.points == "surface":
        pp, gp = surface_points(pv, pf, proto.num_points, proto.seed), surface_points(gv, gf, proto.num_points, proto.seed + 1)
    else:
        pp, gp = rendered_points(pv, pf, proto), rendered_points(gv, gf, proto)
    chamfer, f, precision, recall = chamfer_and_fscore(pp, gp, proto.fscore_threshold)
    # 4. Volume IoU of the voxelised solids
    lattice = voxel_lattice(proto.iou_resolution, pv, gv)
    iou = volume_iou(voxelize(pv, pf, proto.iou_resolution, proto.close_holes, lattice),
                     voxelize(gv, gf, proto.iou_resolution, proto.close_holes, lattice))
    return MeshMetrics(chamfer, iou, f, precision, recall, proto.fscore_threshold, proto.name, proto.normalize, proto.alignment)


# ---------------------------------------------------------------------- folders of objects
def find_object_mesh(folder: str | os.PathLike) -> str:
    """The mesh of one object folder: ``mesh.glb``/``mesh.obj``/``mesh.ply`` (what ``zero123 reconstruct``
    writes), else ``meshes/model.obj`` (Google Scanned Objects), else the only mesh file inside."""
    from pathlib import Path

    from ..data.meshes import find_meshes

    folder = Path(folder)
    for name in ("mesh.glb", "mesh.obj", "mesh.ply", "meshes/model.obj"):
        if (folder / name).is_file():
            return str(folder / name)
    found = find_meshes(folder)
    if len(found) != 1:
        raise ValueError(f"object folder {str(folder)!r} holds {len(found)} mesh files; expected mesh.glb or exactly one mesh")
    return found[0]


def evaluate_folders(pred_root: str | os.PathLike, gt_root: str | os.PathLike,
                     protocol: MetricProtocol | str = "syncdreamer-gso30") -> tuple[dict[str, MeshMetrics], dict[str, float]]:
    """Score every object of a local ground-truth copy (``gt_root/<name>/``, e.g. the 30 GSO objects
    of the SyncDreamer protocol) that has a prediction (``pred_root/<name>/``).

    Returns ``({name: MeshMetrics}, means)`` with ``means`` the average of each metric.

    Raises:
        ValueError: no object has both a prediction and a ground truth.
    """
    from pathlib import Path

    pred_root, gt_root = Path(pred_root), Path(gt_root)
    for name, root in (("--pred", pred_root), ("--gt", gt_root)):
        if not root.is_dir():
            raise FileNotFoundError(f"{name} folder {str(root)!r} does not exist")
    names = sorted(p.name for p in gt_root.iterdir() if p.is_dir() and (pred_root / p.name).is_dir())
    if not names:
        raise ValueError(f"no object folder of {str(gt_root)!r} has a prediction folder of the same name in {str(pred_root)!r}")
    results = {n: evaluate_mesh(find_object_mesh(pred_root / n), find_object_mesh(gt_root / n), protocol) for n in names}
    keys = ("chamfer", "volume_iou", "fscore", "precision", "recall")
    means = {k: float(np.mean([getattr(r, k) for r in results.values()])) for k in keys}
    return results, means
