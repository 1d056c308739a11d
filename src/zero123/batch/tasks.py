"""Tasks a batch job runs per row (the :class:`~zero123.batch.runner.RowTask` seam).

* :class:`NvsTask` (``--task nvs``): the novel views of the row's image for the row's cameras,
  through :func:`zero123.nvs.generate_views` (all of a row's views in one batched pipeline call,
  view ``i`` seeded ``seed + i``), written as :meth:`zero123.nvs.NovelViews.save` writes them.

* :class:`ReconstructTask` (``--task reconstruct``): a textured mesh per row through the image-to-3D
  fast route (:func:`zero123.threed.reconstruct.reconstruct_from_image`: a ring of generated views,
  a fitted field, mesh and texture), written as :func:`zero123.threed.export.write_reconstruction`
  writes it (``mesh.glb``, ``mesh.obj`` + ``.mtl`` + texture, ``mesh.ply``, turntable, ``views.png``,
  ``report.json``). The row's ``cond_elevation`` is the photo's elevation (default: the task's);
  its cameras are not used (the ring is the route's).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..nvs import Preprocessing, SamplingSettings
from ..threed.export import TURNTABLE_FORMATS
from ..threed.reconstruct import DEFAULT_INPUT_ELEVATION, ImageRouteSettings, ring_world_to_cams
from .manifest import BatchRow

TASK_NAMES: tuple[str, ...] = ("nvs", "reconstruct")


@dataclass(frozen=True)
class NvsTask:
    """Novel views per row.

    Attributes:
        model: what :func:`zero123.loading.load_pipeline` loads (``"bundled"``, a folder, a file).
        sampling: steps, guidance, eta and the U-Net batch bound.
        preprocessing: background removal and recentring (``segment="none"``: as is).
        trust_pickle: allow an original Lightning ``.ckpt`` (only for files you trust).
        contact_sheet: also write ``contact_sheet.png`` per row.
    """

    model: str = "bundled"
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    trust_pickle: bool = False
    contact_sheet: bool = True
    name: str = field(default="nvs", init=False)

    def __post_init__(self):
        object.__setattr__(self, "model", _model_id(self.model))

    def settings(self) -> dict[str, Any]:
        # max_batch only bounds memory; it is left out so a rerun may change it
        sampling = {k: v for k, v in asdict(self.sampling).items() if k != "max_batch"}
        return {"model": self.model, "sampling": sampling, "preprocessing": asdict(self.preprocessing),
                "contact_sheet": self.contact_sheet}

    def prepare(self, row: BatchRow) -> dict[str, Any]:
        """Read and preprocess the row's image; the prepared image and the cut-out travel as PNG
        bytes (lossless, so every backend samples from the same pixels)."""
        from ..nvs import check_cameras, prepare_input

        check_cameras(list(row.cameras), cond_elevation=row.cond_elevation)
        prepared = prepare_input(row.image_path, self.preprocessing)
        return {"image_png": _png(prepared.image), "method": prepared.method,
                "cutout_png": None if prepared.cutout is None else _png(prepared.cutout)}

    def load(self, device, dtype):
        from ..loading import load_pipeline

        return load_pipeline(self.model, device=device, dtype=dtype, trust_pickle=self.trust_pickle)

    def run(self, model, row: BatchRow, prepared: dict[str, Any], folder: Path) -> list[str]:
        from PIL import Image

        from ..nvs import PreparedInput, generate_views

        image, cutout = (None if b is None else Image.open(io.BytesIO(b)) for b in (prepared["image_png"], prepared["cutout_png"]))
        views = generate_views(model, PreparedInput(image=image, method=prepared["method"], cutout=cutout), list(row.cameras),
                               settings=self.sampling, seed=row.seed, cond_elevation=row.cond_elevation)
        written = views.save(folder, contact_sheet=self.contact_sheet)
        paths = [written["input"], written.get("cutout"), *(v["path"] for v in written["views"]), written.get("contact_sheet")]
        return [Path(p).name for p in paths if p is not None]


@dataclass(frozen=True)
class ReconstructTask:
    """A textured mesh per row (the image-to-3D fast route).

    Attributes:
        model: what :func:`zero123.loading.load_pipeline` loads.
        route: :class:`zero123.threed.reconstruct.ImageRouteSettings` (ring, sampler, preprocessing,
            fit-mesh-texture chain, e.g. ``reconstruct=get_preset("quality")``).
        elevation: the photo's elevation in degrees for rows without ``cond_elevation``.
        turntable: ``"mp4"``, ``"gif"`` or ``None`` (no video).
        trust_pickle: allow an original Lightning ``.ckpt`` (only for files you trust).
    """

    model: str = "bundled"
    route: ImageRouteSettings = field(default_factory=ImageRouteSettings)
    elevation: float = DEFAULT_INPUT_ELEVATION
    turntable: str | None = "mp4"
    trust_pickle: bool = False
    name: str = field(default="reconstruct", init=False)

    def __post_init__(self):
        object.__setattr__(self, "model", _model_id(self.model))
        if not isinstance(self.route, ImageRouteSettings):
            raise TypeError(f"route must be an ImageRouteSettings, got {type(self.route).__name__}")
        if self.turntable is not None and self.turntable not in TURNTABLE_FORMATS:
            raise ValueError(f"turntable must be one of {TURNTABLE_FORMATS} or None, got {self.turntable!r}")
        ring_world_to_cams(self.route.ring(), self.elevation, self.route.distance)  # the elevation fits the ring

    def settings(self) -> dict[str, Any]:
        route = asdict(self.route)
        route["sampling"].pop("max_batch")  # only bounds memory; a rerun may change it
        settings = {"model": self.model, "route": route, "elevation": self.elevation, "turntable": self.turntable}
        return json.loads(json.dumps(settings))  # tuples as lists, as batch.json stores them

    def _elevation(self, row: BatchRow) -> float:
        return self.elevation if row.cond_elevation is None else row.cond_elevation

    def prepare(self, row: BatchRow) -> dict[str, Any]:
        """Check the row's elevation against the ring, read and preprocess the image; the prepared
        image, cut-out and silhouette travel as PNG bytes."""
        import numpy as np
        from PIL import Image

        from ..nvs import prepare_input

        ring_world_to_cams(self.route.ring(), self._elevation(row), self.route.distance)
        prepared = prepare_input(row.image_path, self.route.preprocessing)
        mask = None if prepared.mask is None else Image.fromarray(np.asarray(prepared.mask, np.uint8) * 255)
        return {"image_png": _png(prepared.image), "method": prepared.method,
                "cutout_png": None if prepared.cutout is None else _png(prepared.cutout),
                "mask_png": None if mask is None else _png(mask)}

    def load(self, device, dtype):
        from ..loading import load_pipeline

        return load_pipeline(self.model, device=device, dtype=dtype, trust_pickle=self.trust_pickle)

    def run(self, model, row: BatchRow, prepared: dict[str, Any], folder: Path) -> list[str]:
        import numpy as np
        from PIL import Image

        from ..nvs import PreparedInput
        from ..threed.export import write_reconstruction
        from ..threed.fit import fit_device
        from ..threed.reconstruct import reconstruct_from_image

        image, cutout, mask = (None if prepared[k] is None else Image.open(io.BytesIO(prepared[k]))
                               for k in ("image_png", "cutout_png", "mask_png"))
        inp = PreparedInput(image=image, method=prepared["method"], cutout=cutout,
                            mask=None if mask is None else np.asarray(mask) > 127)
        rec = reconstruct_from_image(model, inp, elevation_deg=self._elevation(row), settings=self.route, seed=row.seed,
                                     device=fit_device(model.device))
        write_reconstruction(rec, folder, turntable=self.turntable, report_extra={"image": row.image, "model": self.model})
        return sorted(p.name for p in folder.iterdir() if p.is_file())


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _model_id(model: str | os.PathLike) -> str:
    """A model as stored in the job settings: an existing local path made absolute (so a rerun
    from another working folder matches), a name as given; anything else is a ValueError."""
    if not isinstance(model, (str, os.PathLike)) or not str(model):
        raise ValueError(f"model must be a model name or path, got {model!r}")
    text = os.fspath(model)
    return str(Path(text).expanduser().resolve()) if Path(text).expanduser().exists() else text
