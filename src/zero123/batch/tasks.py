"""Tasks a batch job runs per row (the :class:`~zero123.batch.runner.RowTask` seam).

* :class:`NvsTask` (``--task nvs``): the novel views of the row's image for the row's cameras,
  through :func:`zero123.nvs.generate_views` (all of a row's views in one batched pipeline call,
  view ``i`` seeded ``seed + i``), written as :meth:`zero123.nvs.NovelViews.save` writes them.

A mesh per row (``--task reconstruct``) is another class with the same four methods.
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..nvs import Preprocessing, SamplingSettings
from .manifest import BatchRow

TASK_NAMES: tuple[str, ...] = ("nvs",)


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
        if not isinstance(self.model, (str, os.PathLike)) or not str(self.model):
            raise ValueError(f"model must be a model name or path, got {self.model!r}")
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


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _model_id(model: str | os.PathLike) -> str:
    """A model as stored in the job settings: an existing local path made absolute (so a rerun
    from another working folder matches), a name as given."""
    text = os.fspath(model)
    return str(Path(text).expanduser().resolve()) if Path(text).expanduser().exists() else text
