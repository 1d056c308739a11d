"""Make the pictures the README shows (run from the repo root; deterministic):

* ``src/zero123/assets/example.png``: a held-out procedural object like the bundled model's
  training objects (2-4 parts, docs/bundled_model.md) but never in a training set (its seed is
  outside ``render-dataset``'s seed space), 256x256 RGBA, transparent background.
* ``docs/camera_convention.png``: the same object rendered at the input camera and at the
  user-facing camera changes, computed through :mod:`zero123.camera` (the ground truth a
  perfect model would produce).

    python scripts/make_docs_figures.py
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from zero123.assets import EXAMPLE_IMAGE
from zero123.camera import RelativeCamera, world_to_cam_from_spherical
from zero123.data.objects import ProceduralConfig, procedural_object
from zero123.render import create_renderer
from zero123.render.mesh import Light
from zero123.utils.fileio import atomic_save_image
from zero123.utils.grid import contact_sheet

#: Seed of the example object: a SeedSequence of a tag no dataset command uses.
EXAMPLE_SEED = int(np.random.SeedSequence([20261125, 0xE8A]).generate_state(1)[0])
#: The bundled model's training objects (``render-dataset --min-parts 2 --max-parts 4 --texture-probability 0.25``).
EXAMPLE_OBJECTS = ProceduralConfig(min_parts=2, max_parts=4, texture_probability=0.25)
INPUT_POLAR, INPUT_AZIMUTH, INPUT_DISTANCE = math.radians(90 - 20), math.radians(30), 1.85
CHANGES = [
    ("input", {}),
    ("azimuth +90", {"azimuth": 90}),
    ("azimuth -90", {"azimuth": -90}),
    ("azimuth 180", {"azimuth": 180}),
    ("elevation +30", {"elevation": 30}),
    ("elevation -30", {"elevation": -30}),
    ("radius 1.2", {"radius": 1.2}),
]


def main(root: Path = Path(".")) -> None:
    mesh = procedural_object(EXAMPLE_SEED, EXAMPLE_OBJECTS)
    light = Light.random(np.random.default_rng(EXAMPLE_SEED))
    renderer = create_renderer("auto", image_size=256)
    poses = []
    for _, params in CHANGES:
        cam = RelativeCamera.from_params(params, input_distance=INPUT_DISTANCE)
        poses.append(world_to_cam_from_spherical(*cam.apply_to_spherical(INPUT_POLAR, INPUT_AZIMUTH, INPUT_DISTANCE)))
    views = [Image.fromarray(v, "RGBA") for v in renderer.render(mesh, np.stack(poses), light)]
    atomic_save_image(views[0], root / "src/zero123/assets" / EXAMPLE_IMAGE.name)
    sheet = contact_sheet([views], col_labels=[name for name, _ in CHANGES], cell_size=160)
    atomic_save_image(sheet, root / "docs/camera_convention.png")
    print("wrote", EXAMPLE_IMAGE.name, "and docs/camera_convention.png")


if __name__ == "__main__":
    main()
