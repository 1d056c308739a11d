"""Make the pictures the README shows (run from the repo root; deterministic):

* ``src/zero123/assets/example.png``: a held-out object of the object-like procedural kind the
  bundled model was fine-tuned on (``--kind objects``, docs/bundled_model.md; a striped vase) but
  never in a training set (its seed is outside ``render-dataset``'s seed space), 256x256 RGBA,
  transparent background.
* ``docs/camera_convention.png``: the same object rendered at the input camera and at the
  user-facing camera changes, computed through :mod:`zero123.camera` (the ground truth a
  perfect model would produce).
* ``docs/objects_contact_sheet.png``: a sample of the object-like procedural kind
  (``render-dataset --kind objects``): the first objects of a ``--seed 0`` training set, one row
  each, turned through azimuth 0, 90, 180, 270 deg at elevation 20 deg.

* ``docs/quickstart_views.png``: the README quickstart's contact sheet, made by running its command
  (``zero123 nvs src/zero123/assets/example.png --azimuth 90,180,270``) with the bundled model.
* ``docs/bundled_model_contact_sheet.png``: the model card's held-out contact sheet, the one
  ``zero123 eval nvs --data data/test64o --model bundled --resolution 64`` writes (its first 8
  objects, so ``--limit 8`` gives the same picture); the held-out set comes from
  ``zero123 eval render-testset -o data/test64o --count 30 --size 64 --seed 777 --kind objects``.

    python scripts/make_docs_figures.py               # everything
    python scripts/make_docs_figures.py --only objects-sheet
    python scripts/make_docs_figures.py --only model-pictures [--testset data/test64o]
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from zero123.assets import EXAMPLE_IMAGE
from zero123.camera import RelativeCamera, world_to_cam_from_spherical
from zero123.data.objects import ProceduralConfig, object_category, procedural_object
from zero123.data.writer import procedural_jobs
from zero123.render import create_renderer
from zero123.render.mesh import Light
from zero123.utils.fileio import atomic_save_image
from zero123.utils.grid import contact_sheet

#: Seed of the example object: a SeedSequence of a tag no dataset command uses (its 8th member,
#: the first vase of the sequence: a shape whose turn a reader can check at a glance).
EXAMPLE_SEED = int(np.random.SeedSequence([20261125, 0xE8A, 7]).generate_state(1)[0])
#: The bundled model's fine-tuning objects (``render-dataset --kind objects``, docs/bundled_model.md).
EXAMPLE_OBJECTS = ProceduralConfig(kind="objects", texture_probability=0.5)
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


def readme_figures(root: Path) -> None:
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


def objects_sheet(root: Path, count: int = 12, size: int = 128) -> None:
    """``docs/objects_contact_sheet.png``: the first ``count`` objects of ``render-dataset --kind
    objects --seed 0`` (the same seeds, hence the same objects) at four azimuths."""
    config = ProceduralConfig(kind="objects", texture_probability=0.5)
    renderer = create_renderer("auto", image_size=size)
    azimuths = (0, 90, 180, 270)
    poses = np.stack([world_to_cam_from_spherical(math.radians(70), math.radians(a), 2.0) for a in azimuths])
    rows, labels = [], []
    for job in procedural_jobs(count, seed=0):
        seed = int(job.source)
        views = renderer.render(procedural_object(seed, config), poses, Light.random(np.random.default_rng(seed)))
        rows.append([Image.fromarray(v, "RGBA") for v in views])
        labels.append(f"{job.name[-3:]} {object_category(seed, config)}")
    renderer.close()
    sheet = contact_sheet(rows, row_labels=labels, col_labels=[f"azimuth {a}" for a in azimuths], cell_size=size)
    atomic_save_image(sheet, root / "docs/objects_contact_sheet.png")
    print("wrote docs/objects_contact_sheet.png")


def model_pictures(root: Path, testset: Path) -> None:
    """The two pictures of the shipped model: the quickstart's views and the model card's sheet,
    each by running the command the docs show (so they are what a user gets)."""
    if not (testset / "testset.json").is_file():
        raise SystemExit(f"--testset {testset}: not a held-out set; render it first (see this script's docstring)")
    zero123 = [sys.executable, "-m", "zero123.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*zero123, "nvs", str(root / "src/zero123/assets/example.png"), "--azimuth", "90,180,270",
                        "-o", f"{tmp}/views"], check=True)
        shutil.copyfile(f"{tmp}/views/contact_sheet.png", root / "docs/quickstart_views.png")
        subprocess.run([*zero123, "eval", "nvs", "--data", str(testset), "--model", "bundled", "--resolution", "64",
                        "--limit", "8", "--no-lpips", "--no-progress", "-o", f"{tmp}/eval"], check=True)
        shutil.copyfile(f"{tmp}/eval/contact_sheet.png", root / "docs/bundled_model_contact_sheet.png")
    print("wrote docs/quickstart_views.png and docs/bundled_model_contact_sheet.png")


def main(argv: list[str] | None = None, root: Path = Path(".")) -> None:
    ap = argparse.ArgumentParser(description="Make the pictures of the docs (deterministic).")
    ap.add_argument("--only", choices=("readme", "objects-sheet", "model-pictures"), default=None,
                    help="make only these pictures")
    ap.add_argument("--testset", type=Path, default=Path("data/test64o"), help="held-out set of the model card's sheet")
    args = ap.parse_args(argv)
    if args.only in (None, "readme"):
        readme_figures(root)
    if args.only in (None, "objects-sheet"):
        objects_sheet(root)
    if args.only in (None, "model-pictures"):
        model_pictures(root, args.testset)


if __name__ == "__main__":
    main()
