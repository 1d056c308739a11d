"""Novel views of one image for a list of cameras: the library use-case behind ``zero123 nvs``, the
web app and batch jobs.

:func:`generate_views` prepares the image (background removal and recentring, or as is), samples
every view in ONE batched pipeline call with one generator per view (view ``i`` uses ``seed + i``,
so a view does not change when others are added after it) and returns a :class:`NovelViews` that
knows how to lay itself out as a contact sheet and write itself to a folder atomically.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from .camera import DEFAULT_INPUT_DISTANCE, RelativeCamera, check_cond_elevation
from .schedule import check_solver

#: Views per row in the contact sheet (the input image comes first).
SHEET_COLUMNS = 6

SegmentMethod = Literal["auto", "alpha", "threshold", "grabcut", "rembg", "none"]
SEGMENT_METHODS: tuple[str, ...] = ("auto", "alpha", "threshold", "grabcut", "rembg", "none")


@dataclass(frozen=True)
class SamplingSettings:
    """How each view is sampled (the original demo's DDIM by default; ``docs/conventions.md``, "Sampling").

    Named presets: :data:`QUALITY_PRESETS` / :func:`sampling_preset` (``"original"`` = this
    default, ``"fast"`` = Euler ancestral, 10 steps: held-out PSNR, SSIM and mask IoU no worse than it, 4.9x fewer U-Net calls).

    Attributes:
        steps: solver steps S; for ``"ddim"`` on the original grid S = 50 runs 49 steps (2 to 500).
        guidance: classifier-free guidance scale (1.0 runs the conditional branch only).
        eta: DDIM eta (1.0 = the original demo's stochastic sampler); the other solvers ignore it.
        max_batch: largest U-Net batch per forward call (bounds memory), ``None`` = all at once.
        solver: ``"ddim"`` (the original grid), ``"dpm++"``, ``"euler-a"`` or ``"unipc"``
            (:func:`zero123.schedule.make_scheduler`).
    """

    steps: int = 50
    guidance: float = 3.0
    eta: float = 1.0
    max_batch: int | None = None
    solver: str = "ddim"

    def __post_init__(self):
        check_solver(self.solver)
        low, high = (2, 500) if self.solver == "ddim" else (2, 1000)
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or not low <= self.steps <= high:
            raise ValueError(f"steps must be an integer from {low} to {high} for solver {self.solver!r}, got {self.steps!r}")
        for name in ("guidance", "eta"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v!r}")
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0, got {self.eta}")
        if self.max_batch is not None and (isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int) or self.max_batch < 1):
            raise ValueError(f"max_batch must be a positive integer or None, got {self.max_batch!r}")


#: Sampler presets by quality name. ``"original"``: the original demo (DDIM on the original grid,
#: 50 steps = 49, eta 1, guidance 3); ``"fast"``: the solver and step count chosen by the held-out
#: quality-vs-steps measurement (docs/benchmarks.md, "Solvers: quality against steps").
QUALITY_PRESETS: dict[str, SamplingSettings] = {
    "original": SamplingSettings(),
    "fast": SamplingSettings(solver="euler-a", steps=10),
}
QUALITIES: tuple[str, ...] = tuple(QUALITY_PRESETS)


def sampling_preset(quality: str = "original", **overrides) -> SamplingSettings:
    """The :data:`QUALITY_PRESETS` entry ``quality`` with ``overrides`` (``steps``, ``solver``,
    ``guidance``, ``eta``, ``max_batch``) applied; overrides that are ``None`` are ignored, so a
    command line can pass its unset options through.

    >>> sampling_preset("fast", steps=20).steps
    20
    >>> sampling_preset("original", solver=None).solver
    'ddim'
    """
    import dataclasses

    if quality not in QUALITY_PRESETS:
        raise ValueError(f"quality must be one of {', '.join(QUALITIES)}; got {quality!r}")
    fields = {f.name for f in dataclasses.fields(SamplingSettings)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"sampling_preset got unknown settings {unknown}; known: {sorted(fields)}")
    return dataclasses.replace(QUALITY_PRESETS[quality], **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Preprocessing:
    """How a photo becomes the model input (``docs/conventions.md``, "Preprocessing").

    Attributes:
        segment: ``"auto"``, ``"alpha"``, ``"threshold"``, ``"grabcut"``, ``"rembg"`` (see
            :func:`zero123.preprocess.preprocess_image`) or ``"none"`` (use the image as it is).
        object_size: the object's longest side as a share of the image side (the demo's 200/256).
        canvas_size: side of the prepared square image in pixels.
    """

    segment: SegmentMethod = "auto"
    object_size: float = 200 / 256
    canvas_size: int = 256

    def __post_init__(self):
        if self.segment not in SEGMENT_METHODS:
            raise ValueError(f"segment must be one of {SEGMENT_METHODS}, got {self.segment!r}")
        if isinstance(self.object_size, bool) or not isinstance(self.object_size, (int, float)) or not 0.1 <= self.object_size <= 1.0:
            raise ValueError(f"object_size is the object's share of the image side, in [0.1, 1.0]; got {self.object_size!r}")


@dataclass
class PreparedInput:
    """A photo made ready for the model.

    Attributes:
        image: the prepared RGB image (white background, object centred) or the input as it is.
        method: the segmentation method used (``"alpha"``, ``"threshold"``, ``"grabcut"``,
            ``"rembg"``) or ``"none"``.
        cutout: the object cut out at the input's full resolution (RGBA), when segmented.
        mask: ``(H, W)`` bool silhouette of the object in :attr:`image`, when segmented (3D
            reconstruction fits the input view's silhouette).
    """

    image: Image.Image
    method: str
    cutout: Image.Image | None = None
    mask: np.ndarray | None = None


@dataclass
class GeneratedView:
    """One generated view: its camera change (``params`` as the user gave it), image and seed."""

    camera: RelativeCamera
    params: dict[str, float]
    image: Image.Image
    seed: int

    @property
    def label(self) -> str:
        p = self.params
        return f"az {p['azimuth']:g} el {p['elevation']:g} r {p['radius']:g}"

    def file_name(self, index: int) -> str:
        p = self.params
        return f"view_{index:02d}_az{p['azimuth']:g}_el{p['elevation']:g}_r{p['radius']:g}.png"


@dataclass
class NovelViews:
    """What :func:`generate_views` made.

    Attributes:
        prepared: the prepared input (:class:`PreparedInput`).
        model_input: what the model saw: the prepared image at the model's resolution, composited on white.
        views: one :class:`GeneratedView` per camera, in the order given.
        settings: the sampler settings used.
        seed: the base seed (view ``i`` used ``seed + i``).
    """

    prepared: PreparedInput
    model_input: Image.Image
    views: list[GeneratedView]
    settings: SamplingSettings
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)

    def contact_sheet(self, columns: int = SHEET_COLUMNS) -> Image.Image:
        """The input then every view, labelled, ``columns`` cells per row."""
        from .utils.grid import contact_sheet

        cell = max(128, self.model_input.width)
        tiles = [t.resize((cell, cell), Image.Resampling.NEAREST) if t.width < cell else t
                 for t in (self.model_input, *(v.image for v in self.views))]
        labels = ["input", *(v.label for v in self.views)]
        rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
        if len(rows) == 1:
            return contact_sheet(rows, col_labels=labels, cell_size=cell)
        # several rows: label each cell's column by position, and rows by their first view
        col_labels = [str(c) for c in range(min(columns, len(tiles)))]
        row_labels = [labels[i] for i in range(0, len(tiles), columns)]
        return contact_sheet(rows, col_labels=col_labels, row_labels=row_labels, cell_size=cell)

    def save(self, out_dir: str | Path, *, contact_sheet: bool = True) -> dict[str, Any]:
        """Write ``input.png`` (what the model saw), ``cutout.png`` (when segmented), one PNG per view
        and ``contact_sheet.png`` (unless ``contact_sheet=False``) into ``out_dir``, each atomically.
        Returns what was written."""
        from .utils.fileio import atomic_save_image

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written: dict[str, Any] = {"input": str(atomic_save_image(self.model_input, out / "input.png"))}
        if self.prepared.cutout is not None:
            written["cutout"] = str(atomic_save_image(self.prepared.cutout, out / "cutout.png"))
        written["views"] = [
            {"path": str(atomic_save_image(v.image, out / v.file_name(i))), **v.params, "seed": v.seed}
            for i, v in enumerate(self.views)
        ]
        if contact_sheet:
            written["contact_sheet"] = str(atomic_save_image(self.contact_sheet(), out / "contact_sheet.png"))
        return written


def camera_params(camera: Mapping[str, float] | RelativeCamera, parsed: RelativeCamera | None = None) -> dict[str, float]:
    """User-facing ``{"azimuth", "elevation", "radius"}`` of a camera change, as the user gave it
    (radius as a ratio; a raw ``d_radius`` is read with the nominal input distance). ``parsed`` is
    the camera's :class:`RelativeCamera` when the caller has it already."""
    cam = camera if isinstance(camera, RelativeCamera) else parsed or RelativeCamera.from_params(camera)
    if isinstance(camera, RelativeCamera) or "delta_radius" in camera:
        radius = 1.0 + cam.d_radius / DEFAULT_INPUT_DISTANCE
    else:
        radius = camera.get("radius", 1.0)
    if isinstance(camera, RelativeCamera):
        return {"azimuth": cam.azimuth, "elevation": cam.elevation, "radius": radius}
    return {"azimuth": float(camera.get("azimuth", 0.0)), "elevation": float(camera.get("elevation", 0.0)), "radius": float(radius)}


def check_cameras(cameras: Sequence[Mapping[str, float] | RelativeCamera], *,
                  cond_elevation: float | None = None) -> list[RelativeCamera]:
    """The :class:`RelativeCamera` of each camera change, checked (and ``cond_elevation`` checked
    when given), so a caller can refuse bad cameras before loading a model.

    Raises:
        ValueError: an empty list, a bad camera dict (the message starts with the parameter name,
            e.g. ``"elevation must be ..."``) or a bad ``cond_elevation``.
    """
    if isinstance(cameras, (Mapping, RelativeCamera)) or not isinstance(cameras, Sequence) or not cameras:
        raise ValueError("cameras must be a non-empty list of camera changes (dicts or RelativeCamera)")
    check_cond_elevation(cond_elevation)
    return [c if isinstance(c, RelativeCamera) else RelativeCamera.from_params(c, name=f"cameras[{i}]")
            for i, c in enumerate(cameras)]


def prepare_input(image, preprocessing: Preprocessing = Preprocessing()) -> PreparedInput:
    """Load ``image`` (anything :func:`zero123.image_io.load_image` reads) and prepare it.

    With ``segment="none"`` the image is used as it is, except that a non-square image is padded
    to a square (centred; transparent, hence white, padding) instead of being squashed by the
    pipeline's resize. Otherwise the object is cut out, recentred and scaled
    (:func:`zero123.preprocess.preprocess_image`) and :attr:`PreparedInput.cutout` holds the cut-out
    at the input's full resolution.
    """
    from .image_io import load_image, pad_to_square

    pil = load_image(image, name="image")
    if preprocessing.segment == "none":
        return PreparedInput(image=pad_to_square(pil), method="none")
    from .preprocess import preprocess_image

    canvas = preprocessing.canvas_size
    result = preprocess_image(pil, method=preprocessing.segment, object_size=round(preprocessing.object_size * canvas),
                              canvas_size=canvas)
    return PreparedInput(image=result.image, method=result.method, cutout=result.cutout, mask=result.mask)


def generate_views(
    pipe,
    image,
    cameras: Sequence[Mapping[str, float] | RelativeCamera],
    *,
    settings: SamplingSettings = SamplingSettings(),
    seed: int = 0,
    preprocessing: Preprocessing = Preprocessing(),
    cond_elevation: float | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> NovelViews:
    """Generate the view of ``image`` from each camera change in ``cameras``.

    Args:
        pipe: a :class:`zero123.Zero123Pipeline` (e.g. from :func:`zero123.loading.load_pipeline`).
        image: a path, PIL image, numpy array or tensor, prepared with ``preprocessing``; or a
            :class:`PreparedInput` from :func:`prepare_input`, used as it is.
        cameras: camera changes, each a dict ``{"azimuth", "elevation", "radius"}`` (degrees, + elevation
            = camera up, radius a distance ratio) or a :class:`RelativeCamera`.
        settings: sampler settings.
        seed: view ``i`` is sampled with a CPU generator seeded ``seed + i``.
        preprocessing: background removal and recentring (or ``segment="none"``).
        cond_elevation: the input view's elevation in degrees (Stable Zero123 models need it).
        on_step: ``on_step(done, total)`` after each denoising step (progress bars; raise to cancel).

    Returns:
        :class:`NovelViews`.
    """
    import torch

    # 1. Check the cameras before any heavy work
    rel = check_cameras(cameras, cond_elevation=cond_elevation)
    params = [camera_params(c, r) for c, r in zip(cameras, rel)]

    # 2. Prepare the input (unless the caller already did, e.g. to check it before loading a model)
    prepared = image if isinstance(image, PreparedInput) else prepare_input(image, preprocessing)

    # 3. Sample every view in one call, one generator per view
    generators = [torch.Generator().manual_seed(seed + i) for i in range(len(rel))]
    callback = None
    if on_step is not None:
        def callback(p, i, t, tensors):
            on_step(i + 1, p.num_timesteps)
            return {}

    result = pipe(
        prepared.image,
        cameras=rel,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance,
        eta=settings.eta,
        generator=generators,
        cond_elevation=cond_elevation,
        max_batch=settings.max_batch,
        solver=settings.solver,
        output_type="pil",
        callback_on_step_end=callback,
    )

    # 4. What the model saw: the pipeline's own resize + composite, back to 8-bit RGB
    seen = (pipe.image_to_tensor(prepared.image)[0].permute(1, 2, 0).numpy() + 1.0) * 127.5
    model_input = Image.fromarray(seen.round().clip(0, 255).astype("uint8"))
    views = [GeneratedView(c, p, img, seed + i) for i, (c, p, img) in enumerate(zip(rel, params, result.images))]
    return NovelViews(prepared=prepared, model_input=model_input, views=views, settings=settings, seed=seed)
