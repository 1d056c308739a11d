"""Make the README's 3D pictures (run from the repo root; deterministic up to float round-off):

* ``docs/threed_turntables.png``: turntable frames of the example object: its ground-truth mesh,
  the mesh reconstructed from 20 ground-truth views (``reconstruct_from_views``), and the meshes from
  the single example image with the bundled model by the fast route (``reconstruct_from_image``)
  and by the score-distillation route (``zero123.threed.sds.reconstruct_sds``, default preset).
* ``docs/threed_fast_route_views.png``: the fast route's input and generated views.

It prints the posed-views mesh's scores against the ground truth and both image routes' input
silhouette IoU and timings (the figures quoted in the README).

    python scripts/make_3d_figures.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from make_docs_figures import EXAMPLE_OBJECTS, EXAMPLE_SEED  # noqa: E402  (the example image's object)

from zero123.assets import EXAMPLE_IMAGE  # noqa: E402
from zero123.camera import world_to_cams_from_spherical  # noqa: E402
from zero123.data.objects import procedural_object  # noqa: E402
from zero123.loading import load_pipeline  # noqa: E402
from zero123.render import Light, create_renderer  # noqa: E402
from zero123.threed.export import render_turntable, turntable_cameras  # noqa: E402
from zero123.threed.fit import PosedViews  # noqa: E402
from zero123.threed.metrics import evaluate_mesh  # noqa: E402
from zero123.threed.reconstruct import reconstruct_from_image, reconstruct_from_views, silhouette_iou, views_sheet  # noqa: E402
from zero123.threed.sds import reconstruct_sds  # noqa: E402
from zero123.utils.fileio import atomic_save_image  # noqa: E402
from zero123.utils.grid import contact_sheet  # noqa: E402

FRAMES, SIZE = 8, 160
#: The example image's camera (scripts/make_docs_figures.py): elevation 20 deg, azimuth 30 deg.
INPUT_ELEVATION, INPUT_AZIMUTH = 20.0, 30.0


def sphere_cameras(n: int = 20, distance: float = 1.9) -> np.ndarray:
    i = np.arange(n) + 0.5
    return world_to_cams_from_spherical(torch.tensor(np.arccos(1 - 2 * i / n)), torch.tensor(np.pi * (1 + 5**0.5) * i),
                                        torch.full((n,), distance)).numpy()


def main(root: Path = Path(".")) -> None:
    light = Light.random(np.random.default_rng(EXAMPLE_SEED))
    gt = procedural_object(EXAMPLE_SEED, EXAMPLE_OBJECTS)
    renderer = create_renderer("auto", image_size=64)

    # 1. From 20 ground-truth views (64 px), in the object's frame
    cams = sphere_cameras()
    posed = reconstruct_from_views(PosedViews.from_rgba(renderer.render(gt, cams, light), cams))
    scores = evaluate_mesh(posed.mesh, gt)
    print(f"posed views: {scores}; timings {posed.timings}")

    # 2. The fast route from the example image with the bundled model (input at elevation 20 deg)
    pipe = load_pipeline("bundled", device="cpu")
    fast = reconstruct_from_image(pipe, EXAMPLE_IMAGE, elevation_deg=INPUT_ELEVATION, seed=0)
    print(f"fast route: input silhouette IoU {silhouette_iou(fast.mesh, fast.input_world_to_cam, fast.input_mask):.3f}; "
          f"timings {fast.timings}")
    sds = reconstruct_sds(pipe, EXAMPLE_IMAGE, elevation_deg=INPUT_ELEVATION, seed=0)
    print(f"sds route: input silhouette IoU {sds.extra['input_silhouette_iou']:.3f}; timings {sds.timings}")

    # 3. Turntables from the example image's viewpoint on: the fast route's frame has the input
    #    camera at azimuth 0, the object's frame has it at azimuth 30 deg
    big = create_renderer("auto", image_size=SIZE)
    gt_views = big.render(gt, turntable_cameras(gt, FRAMES, INPUT_ELEVATION, start_azimuth_deg=INPUT_AZIMUTH), light)
    rows = [gt_views,
            render_turntable(posed.textured, FRAMES, SIZE, INPUT_ELEVATION, start_azimuth_deg=INPUT_AZIMUTH),
            render_turntable(fast.textured, FRAMES, SIZE, INPUT_ELEVATION, start_azimuth_deg=0.0),
            render_turntable(sds.textured, FRAMES, SIZE, INPUT_ELEVATION, start_azimuth_deg=0.0)]
    labels = ["ground truth", "from 20 views", "1 image: views", "1 image: sds"]
    cols = [f"{round(360 * k / FRAMES):d} deg" for k in range(FRAMES)]
    sheet = contact_sheet([[Image.fromarray(f, "RGBA") for f in row] for row in rows], row_labels=labels, col_labels=cols)
    atomic_save_image(sheet, root / "docs/threed_turntables.png")
    atomic_save_image(views_sheet(fast, cell=96), root / "docs/threed_fast_route_views.png")
    print("wrote docs/threed_turntables.png and docs/threed_fast_route_views.png")
    assert math.isfinite(scores.chamfer)


if __name__ == "__main__":
    main()
