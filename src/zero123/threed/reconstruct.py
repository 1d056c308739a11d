"""The two ways to a textured mesh: from posed views, and from one image (the fast route).

* :func:`reconstruct_from_views`: images with known cameras (a ``views_release`` object folder,
  :func:`load_views`, or real multi-view captures) -> field fit -> mesh -> texture. The mesh is in
  the frame of the cameras.
* :func:`reconstruct_from_image`: one photo -> Zero-1-to-3 generates a ring of views around it in
  one batched pipeline call -> the input and the generated views are placed on their cameras (the
  input at ``elevation_deg``, azimuth 0, distance :data:`zero123.camera.DEFAULT_INPUT_DISTANCE`) ->
  the same fit with the input view weighted up -> mesh -> texture with the input photo projected
  onto the texels it sees.

Both return a :class:`Reconstruction` (every intermediate result, settings and seconds per stage);
:func:`zero123.threed.export.export_all` writes the files and :meth:`Reconstruction.report` the
``report.json`` content.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..camera import DEFAULT_INPUT_DISTANCE, RelativeCamera, world_to_cam_from_spherical
from ..nvs import Preprocessing, SamplingSettings
from .field import FieldSettings
from .fit import DEFAULT_FOV_DEG, FitResult, FitSettings, PosedViews, fit_field
from .mesh import ExtractedMesh, MeshSettings, extract_mesh
from .texture import ProjectedImage, TexturedMesh, TextureSettings, bake_texture

#: Input elevation (degrees above the equator) assumed by the fast route when none is given: a
#: typical product-photo viewpoint, slightly above the object. Pass the real one when known.
DEFAULT_INPUT_ELEVATION = 15.0

#: ``progress(stage, done, total)``: stage is "generate", "fit", "mesh" or "texture".
StageProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ReconstructSettings:
    """Everything of the fit-mesh-texture chain.

    Attributes:
        field: the radiance field (kind, box, resolutions).
        fit: the optimisation.
        mesh: extraction.
        texture: the baked texture.
        image_size: views are resized to this side before fitting.
        project_views: posed-views route: project every view onto the texture (else the field colour only).
    """

    field: FieldSettings = FieldSettings()
    fit: FitSettings = FitSettings()
    mesh: MeshSettings = MeshSettings()
    texture: TextureSettings = TextureSettings()
    image_size: int = 64
    project_views: bool = True

    def __post_init__(self):
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or not 16 <= self.image_size <= 1024:
            raise ValueError(f"image_size must be an integer in [16, 1024], got {self.image_size!r}")


#: Ready settings: ``fast`` (64 px, the default: about a minute on a 2-core CPU), ``quality``
#: (128 px views, a finer grid, longer fit, 1024 px texture: for a GPU or patient CPUs).
PRESETS: dict[str, ReconstructSettings] = {
    "fast": ReconstructSettings(),
    "quality": ReconstructSettings(
        field=FieldSettings(resolution=128, initial_resolution=48),
        fit=FitSettings(steps=2000, batch_rays=8192, num_samples=128, grow_at=(0.15, 0.3)),
        mesh=MeshSettings(resolution=256, max_faces=20_000),
        texture=TextureSettings(size=1024),
        image_size=128,
    ),
}


def get_preset(name: str) -> ReconstructSettings:
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name]


@dataclass
class GeneratedViews:
    """The fast route's generated views: ``images`` ``(N, S, S, 3)`` float32 in [0, 1] (on white),
    their camera changes from the input, world-to-camera matrices ``(N, 3, 4)`` and the seeds used."""

    images: np.ndarray
    cameras: list[RelativeCamera]
    world_to_cams: np.ndarray
    seeds: list[int]


@dataclass
class Reconstruction:
    """A reconstruction and how it was made.

    Attributes:
        views: what the field was fitted to (for the fast route: the input view first, then the
            generated ones).
        fit: the fitted field and its log.
        mesh: the extracted mesh (vertex colours).
        textured: the UV-textured mesh.
        settings: the chain's settings.
        timings: seconds per stage (``generate``, ``fit``, ``mesh``, ``texture``; ``total``).
        generated: the fast route's generated views (None for posed views).
        input_world_to_cam: the fast route's input camera (None for posed views).
        input_mask: the fast route's input silhouette ``(H, W)`` bool at the preprocessed size.
        extra: route parameters for the report (elevation, seeds, model).
    """

    views: PosedViews
    fit: FitResult
    mesh: ExtractedMesh
    textured: TexturedMesh
    settings: ReconstructSettings
    timings: dict[str, float] = field(default_factory=dict)
    generated: GeneratedViews | None = None
    input_world_to_cam: np.ndarray | None = None
    input_mask: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def mesh_stats(self) -> dict:
        """Vertex/face counts, bounding box, threshold, components dropped, texture size."""
        import trimesh

        tm = trimesh.Trimesh(self.mesh.vertices, self.mesh.faces, process=False)
        return {
            "vertices": self.mesh.num_vertices,
            "faces": self.mesh.num_faces,
            "textured_vertices": int(len(self.textured.vertices)),
            "watertight": bool(tm.is_watertight),
            "bbox_min": [float(x) for x in self.mesh.vertices.min(0)],
            "bbox_max": [float(x) for x in self.mesh.vertices.max(0)],
            "threshold": self.mesh.threshold,
            "threshold_silhouette_iou": self.mesh.threshold_iou,
            "components_dropped": self.mesh.components_dropped,
            "faces_before_decimation": self.mesh.faces_before_decimation,
            "texture_size": int(self.textured.texture.shape[0]),
            "texture_coverage": self.textured.coverage,
        }

    def report(self) -> dict:
        """What ``report.json`` holds: settings, route parameters (seeds, elevation), timings per
        stage, fit summary and mesh statistics."""
        final = self.fit.final
        return {
            "route": "views" if self.generated is None else "image",
            **self.extra,
            "settings": dataclasses.asdict(self.settings),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "fit": {"steps": self.fit.settings.steps, "final_loss": final.loss, "final_psnr_db": final.psnr,
                    "samples_evaluated_share": self.fit.samples_evaluated, "field_resolution": _field_resolution(self.fit)},
            "mesh": self.mesh_stats(),
            "views": {"count": self.views.num_views, "image_size": self.views.image_size, "fov_deg": self.views.fov_deg},
        }


def _field_resolution(fit: FitResult) -> int:
    return int(getattr(fit.field, "resolution", fit.field.settings.resolution))


# ---------------------------------------------------------------------- posed views
def load_views(object_dir: str | Path, fov_deg: float = DEFAULT_FOV_DEG) -> PosedViews:
    """Read a ``views_release`` object folder: ``NNN.png`` (RGBA) + ``NNN.npy`` (3x4 world-to-camera,
    Blender camera axes). The images must be square and of one size."""
    from PIL import Image

    from ..data.views_release import object_views

    folder = Path(object_dir)
    indices = object_views(folder)
    images, poses = [], []
    for i in indices:
        png, npy = folder / f"{i:03d}.png", folder / f"{i:03d}.npy"
        try:
            with Image.open(png) as im:
                images.append(np.asarray(im.convert("RGBA")))
        except OSError as e:
            raise ValueError(f"view image {str(png)!r} cannot be read: {e}") from None
        m = np.load(npy)
        if m.shape not in ((3, 4), (4, 4)) or not np.all(np.isfinite(m)):
            raise ValueError(f"pose file {str(npy)!r} must hold a finite 3x4 world-to-camera matrix, got shape {m.shape}")
        poses.append(m[:3].astype(np.float64))
    sizes = {im.shape[:2] for im in images}
    if len(sizes) != 1 or next(iter(sizes))[0] != next(iter(sizes))[1]:
        raise ValueError(f"views in {str(folder)!r} must be square images of one size, got sizes {sorted(sizes)}")
    if len(images) < 2:
        raise ValueError(f"{str(folder)!r} has {len(images)} view; a reconstruction needs at least 2 (16 or more is better)")
    return PosedViews.from_rgba(np.stack(images), np.stack(poses), fov_deg)


def reconstruct_from_views(views: PosedViews, settings: ReconstructSettings = ReconstructSettings(), *,
                           device: torch.device | str = "cpu", progress: StageProgress | None = None,
                           projections: list[ProjectedImage] | None = None) -> Reconstruction:
    """Fit, mesh and texture posed views (see the module docstring).

    ``projections`` overrides the images projected onto the texture (default: every view when
    ``settings.project_views``, each at its own resolution).
    """
    if not isinstance(views, PosedViews):
        raise TypeError(f"views must be PosedViews (see load_views), got {type(views).__name__}")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    notify = progress or (lambda stage, done, total: None)

    # 1. Fit the field at the working resolution
    small = views.resized(settings.image_size)
    fit = fit_field(small, settings.field, settings.fit, device=device, progress=lambda i, n: notify("fit", i, n))
    timings["fit"] = fit.seconds

    # 2. Mesh, with the threshold chosen from the fitted views' silhouettes
    t = time.perf_counter()
    notify("mesh", 0, 1)
    mesh = extract_mesh(fit.field, small.world_to_cams, small.fov_deg, settings.mesh, view_weights=small.weights)
    timings["mesh"] = time.perf_counter() - t
    notify("mesh", 1, 1)

    # 3. Texture: the field's colour, with the views projected onto the texels they see
    t = time.perf_counter()
    notify("texture", 0, 1)
    if projections is None:
        projections = [ProjectedImage(views.rgb[i].numpy(), views.world_to_cams[i].numpy(), views.fov_deg, views.alpha[i].numpy(),
                                      float(views.weights[i])) for i in range(views.num_views)] if settings.project_views else []
    textured = bake_texture(mesh, fit.field, settings.texture, projections)
    timings["texture"] = time.perf_counter() - t
    notify("texture", 1, 1)
    timings["total"] = time.perf_counter() - start
    return Reconstruction(small, fit, mesh, textured, settings, timings)


# ---------------------------------------------------------------------- one image (fast route)
@dataclass(frozen=True)
class ImageRouteSettings:
    """The fast route's settings on top of :class:`ReconstructSettings`.

    Attributes:
        azimuths: azimuth changes (degrees) of the generated ring(s) from the input view.
        elevations: elevation changes (degrees, + = up) of the rings; the input's own camera
            (azimuth 0, elevation 0) is skipped, the input photo stands there.
        sampling: the sampler (:class:`zero123.nvs.SamplingSettings`).
        preprocessing: background removal and recentring (:class:`zero123.nvs.Preprocessing`).
        input_weight: rays drawn from the input view per ray of one generated view.
        distance: camera distance of every view (the world's scale; the model only sees distance
            ratios, all 1 here).
        white_threshold: a generated pixel whose largest channel distance from white is above this
            is object (its silhouette); a soft ramp of 0.1 around it.
        hull_share: the fit's visual-hull start (:func:`zero123.threed.fit.visual_hull`) with this
            weighted share of agreeing views: generated silhouettes disagree, so lower than for
            exact views.
        reconstruct: the fit-mesh-texture chain.
    """

    azimuths: tuple[float, ...] = (0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0)
    elevations: tuple[float, ...] = (0.0, 30.0)
    sampling: SamplingSettings = SamplingSettings()
    preprocessing: Preprocessing = Preprocessing()
    input_weight: float = 8.0
    distance: float = DEFAULT_INPUT_DISTANCE
    white_threshold: float = 0.1
    hull_share: float = 0.6
    reconstruct: ReconstructSettings = ReconstructSettings()

    def __post_init__(self):
        if not 0.0 <= self.hull_share <= 1.0:
            raise ValueError(f"hull_share must be in [0, 1], got {self.hull_share}")
        if not self.azimuths or not self.elevations:
            raise ValueError("azimuths and elevations must each list at least one angle")
        if not self.input_weight > 0:
            raise ValueError(f"input_weight must be > 0, got {self.input_weight}")
        if not self.distance > 0:
            raise ValueError(f"distance must be > 0, got {self.distance}")
        if not self.ring():
            raise ValueError("the ring has no view besides the input's own camera; add azimuths or elevations")

    def ring(self) -> list[RelativeCamera]:
        """The generated views' camera changes, in order (input camera excluded)."""
        return [RelativeCamera.from_degrees(azimuth=a, elevation=e) for e in self.elevations for a in self.azimuths
                if not (math.isclose(a % 360.0, 0.0, abs_tol=1e-9) and e == 0.0)]


def input_camera(elevation_deg: float, distance: float = DEFAULT_INPUT_DISTANCE) -> np.ndarray:
    """The fast route's input camera: ``(3, 4)`` world-to-camera at ``elevation_deg`` above the
    equator, azimuth 0 (on the +X axis), ``distance`` from the origin, looking at it."""
    if not -90.0 < elevation_deg < 90.0:
        raise ValueError(f"elevation is the input view's elevation in degrees and must be in (-90, 90), got {elevation_deg}")
    return world_to_cam_from_spherical(math.radians(90.0 - elevation_deg), 0.0, distance)


def ring_world_to_cams(cameras: list[RelativeCamera], elevation_deg: float, distance: float) -> np.ndarray:
    """``(N, 3, 4)`` world-to-camera matrices of camera changes applied to the input camera."""
    polar0 = math.radians(90.0 - elevation_deg)
    out = []
    for cam in cameras:
        polar, az, r = cam.apply_to_spherical(polar0, 0.0, distance)
        if not 0.0 < polar < math.pi:
            raise ValueError(f"input elevation {elevation_deg:g} + ring elevation {cam.elevation:g} leaves (-90, 90) deg; "
                             "lower the elevation or the ring's elevations")
        out.append(world_to_cam_from_spherical(polar, az, r))
    return np.stack(out)


def alpha_from_white(images: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Silhouettes ``(N, H, W)`` of images ``(N, H, W, 3)`` in [0, 1] on a white background: a soft
    ramp of width 0.1 around ``threshold`` of the largest channel distance from white."""
    dist = (1.0 - images).max(-1)
    return np.clip((dist - threshold) / 0.1 + 0.5, 0.0, 1.0).astype(np.float32)


def field_bound_from_mask(mask: np.ndarray, fov_deg: float, distance: float, margin: float = 1.15) -> float:
    """Half side of a cube around the origin that holds an object whose silhouette at ``distance``
    (centred camera, horizontal ``fov_deg``) is ``mask`` ``(H, W)``: the silhouette's largest
    distance from the image centre, at the origin's depth, times ``margin``."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("the input silhouette is empty; nothing to reconstruct")
    half = distance * math.tan(math.radians(fov_deg) / 2)  # half the frame width at the origin
    r = np.max(np.maximum(np.abs(xs + 0.5 - w / 2), np.abs(ys + 0.5 - h / 2))) / (w / 2)
    return float(min(margin * half * r, 0.9 * distance / math.sqrt(3)))


def reconstruct_from_image(pipe, image, *, elevation_deg: float = DEFAULT_INPUT_ELEVATION,
                           settings: ImageRouteSettings = ImageRouteSettings(), seed: int = 0,
                           device: torch.device | str = "cpu", progress: StageProgress | None = None) -> Reconstruction:
    """The fast route: one image -> generated ring of views -> fit -> mesh -> texture.

    Args:
        pipe: a :class:`zero123.Zero123Pipeline` (e.g. from :func:`zero123.loading.load_pipeline`).
        image: the input photo (a path, PIL image, array, or a :class:`zero123.nvs.PreparedInput`).
        elevation_deg: the input view's elevation above the equator (degrees; default
            :data:`DEFAULT_INPUT_ELEVATION`).
        settings: :class:`ImageRouteSettings`.
        seed: generated view ``i`` is sampled with seed ``seed + i``; the fit uses ``settings.reconstruct.fit.seed``.
        device: where the field is fitted.
        progress: ``progress(stage, done, total)``.
    """
    from ..nvs import PreparedInput, generate_views, prepare_input

    timings: dict[str, float] = {}
    start = time.perf_counter()
    notify = progress or (lambda stage, done, total: None)
    rs = settings.reconstruct
    cameras = settings.ring()
    w2c_in = input_camera(elevation_deg, settings.distance)
    w2c_ring = ring_world_to_cams(cameras, elevation_deg, settings.distance)

    # 1. The input: cut out and recentred on a white canvas, with its silhouette
    t = time.perf_counter()
    prepared = image if isinstance(image, PreparedInput) else prepare_input(image, settings.preprocessing)
    input_rgb = np.asarray(prepared.image.convert("RGB"), np.float32) / 255.0
    mask = prepared.mask if prepared.mask is not None else alpha_from_white(input_rgb[None], settings.white_threshold)[0] > 0.5
    timings["preprocess"] = time.perf_counter() - t

    # 2. Generate the ring of views in one batched pipeline call (view i seeded seed + i)
    t = time.perf_counter()
    novel = generate_views(pipe, prepared, cameras, settings=settings.sampling, seed=seed, cond_elevation=elevation_deg,
                           on_step=lambda done, total: notify("generate", done, total))
    images = np.stack([np.asarray(v.image.convert("RGB"), np.float32) / 255.0 for v in novel.views])
    timings["generate"] = time.perf_counter() - t

    # 3. Posed views: the input first (weighted up), then the generated ones, at the fit resolution
    size = rs.image_size
    gen_alpha = alpha_from_white(images, settings.white_threshold)
    gen = PosedViews(torch.from_numpy(images), torch.from_numpy(gen_alpha), w2c_ring).resized(size)
    inp = PosedViews(torch.from_numpy(input_rgb)[None], torch.from_numpy(mask.astype(np.float32))[None], w2c_in[None]).resized(size)
    views = PosedViews(torch.cat([inp.rgb, gen.rgb]), torch.cat([inp.alpha, gen.alpha]),
                       np.concatenate([w2c_in[None], w2c_ring]), DEFAULT_FOV_DEG,
                       torch.tensor([settings.input_weight] + [1.0] * len(cameras)))
    bound = field_bound_from_mask(mask, DEFAULT_FOV_DEG, settings.distance)
    chain = dataclasses.replace(rs, field=dataclasses.replace(rs.field, bound=bound),
                                fit=dataclasses.replace(rs.fit, hull_share=settings.hull_share))

    # 4. Fit, mesh and texture, with the input photo projected onto the texels it sees
    projection = ProjectedImage(input_rgb, w2c_in, DEFAULT_FOV_DEG, mask.astype(np.float32), 1.0)
    rec = reconstruct_from_views(views, chain, device=device, progress=progress, projections=[projection])
    timings.update({k: v for k, v in rec.timings.items() if k != "total"})
    timings["total"] = time.perf_counter() - start
    rec.timings = timings
    rec.generated = GeneratedViews(images, cameras, w2c_ring, [v.seed for v in novel.views])
    rec.input_world_to_cam = w2c_in
    rec.input_mask = mask
    rec.extra = {
        "elevation_deg": float(elevation_deg), "seed": int(seed), "view_seeds": rec.generated.seeds,
        "ring": [{"azimuth": c.azimuth, "elevation": c.elevation} for c in cameras],
        "sampling": dataclasses.asdict(settings.sampling), "preprocess": prepared.method,
        "input_weight": settings.input_weight, "distance": settings.distance, "field_bound": bound,
    }
    return rec


def views_sheet(rec: Reconstruction, cell: int = 128):
    """The fast route's ``views.png``: the input then every generated view, labelled with its camera change."""
    from PIL import Image

    from ..utils.grid import contact_sheet

    if rec.generated is None:
        raise ValueError("views_sheet needs a reconstruction from one image (it has no generated views)")
    to_pil = lambda a: Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8))  # noqa: E731
    tiles = [to_pil(rec.views.composited()[0].numpy())] + [to_pil(a) for a in rec.generated.images]
    labels = ["input"] + [f"az {c.azimuth:g} el {c.elevation:g}" for c in rec.generated.cameras]
    columns = 8
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    row_labels = [labels[i] for i in range(0, len(tiles), columns)] if len(rows) > 1 else None
    return contact_sheet(rows, row_labels=row_labels, col_labels=labels[:columns] if len(rows) == 1 else None, cell_size=cell)


def silhouette_iou(mesh: TexturedMesh | ExtractedMesh, world_to_cam: np.ndarray, mask: np.ndarray,
                   fov_deg: float = DEFAULT_FOV_DEG) -> float:
    """IoU of the mesh's silhouette (rendered alpha > 0.5 from ``world_to_cam``) and ``mask`` ``(H, W)``."""
    from ..render import RenderMesh, create_renderer

    renderer = create_renderer("auto", image_size=int(mask.shape[0]), fov_deg=fov_deg)
    try:
        alpha = renderer.render(RenderMesh.from_arrays(mesh.vertices, mesh.faces), np.asarray(world_to_cam)[None])[0, ..., 3]
    finally:
        renderer.close()
    sil, ref = alpha > 127, np.asarray(mask) > 0.5
    union = (sil | ref).sum()
    return float((sil & ref).sum() / union) if union else 1.0
