"""Held-out test sets whose views sit at exact camera changes from the input view.

``render_relative_testset`` renders seeded procedural objects (:mod:`zero123.data.objects`, with
seeds disjoint from ``zero123 render-dataset``'s training objects) into the ``views_release``
layout: view 0 is the input, view ``k`` is the k-th requested :class:`TargetChange` from it (same
distance, azimuth + change, elevation + change). Scoring it with
``zero123 eval nvs --split all --targets <the same changes>`` picks exactly those views.

The input camera is drawn per object: azimuth uniform in [0, 360) deg, elevation uniform in
``input_elevation`` (default [0, 30] deg so that +30 / -30 changes stay between -30 and 60 deg),
distance uniform in [1.5, 2.2] (docs/conventions.md, Dataset layout).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from ..camera import RelativeCamera, world_to_cams_from_spherical
from ..data.objects import ProceduralConfig, procedural_object
from ..utils.fileio import atomic_directory, atomic_write
from .protocols import TargetChange

#: The coordinator's held-out changes: azimuth 90, 180, 270 and elevation +30, -30.
DEFAULT_CHANGES: tuple[TargetChange, ...] = (
    TargetChange(90), TargetChange(180), TargetChange(270), TargetChange(0, 30), TargetChange(0, -30),
)


def relative_world_to_cams(
    input_elevation: float, input_azimuth: float, distance: float, changes: tuple[TargetChange, ...]
) -> np.ndarray:
    """``(1 + len(changes), 3, 4)`` world-to-camera matrices: the input camera (degrees, elevation
    + = above the equator) then one per change, at the same distance. Each target is placed with the
    camera API the model is conditioned through (:meth:`RelativeCamera.apply_to_spherical`), so the
    stored poses give back exactly the requested changes."""
    # the input camera is itself a change from the equator at the input azimuth
    equator = (math.pi / 2, math.radians(input_azimuth), distance)
    spherical = []
    for az, el in [(0.0, 0.0)] + [(c.azimuth, c.elevation) for c in changes]:
        e = input_elevation + el
        if not -90.0 < e < 90.0:
            raise ValueError(
                f"target elevation {e:g} deg (input {input_elevation:g} + change {el:g}) must stay strictly between "
                "-90 and 90 deg; narrow input_elevation"
            )
        spherical.append(RelativeCamera.from_degrees(azimuth=az, elevation=e).apply_to_spherical(*equator))
    polar, azimuth, radius = (torch.tensor(v, dtype=torch.float64) for v in zip(*spherical))
    return world_to_cams_from_spherical(polar, azimuth, radius).numpy()


def render_relative_testset(
    out_dir: str | os.PathLike,
    count: int = 20,
    *,
    changes: tuple[TargetChange, ...] = DEFAULT_CHANGES,
    seed: int = 0,
    image_size: int = 256,
    backend: str = "auto",
    input_elevation: tuple[float, float] = (0.0, 30.0),
    distance: tuple[float, float] = (1.5, 2.2),
    procedural: ProceduralConfig = ProceduralConfig(),
    progress: bool = True,
) -> list[str]:
    """Render ``count`` held-out procedural objects into ``out_dir`` (views_release layout plus
    ``valid_paths.json`` and ``testset.json`` recording the changes). ``procedural`` sets the object
    complexity (the default is ``render-dataset``'s);
    use the training set's. Returns the object names. Each object folder appears atomically;
    finished folders are kept on a rerun."""
    from ..data.writer import write_views
    from ..render import Light, create_renderer

    if not isinstance(procedural, ProceduralConfig):
        raise TypeError(f"procedural must be a ProceduralConfig, got {type(procedural).__name__}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if not changes or not all(isinstance(c, TargetChange) for c in changes):
        raise ValueError(f"changes must be a non-empty tuple of TargetChange, got {changes!r}")
    lo, hi = input_elevation
    if not lo <= hi:
        raise ValueError(f"input_elevation must be (low, high) with low <= high, got {input_elevation}")
    relative_world_to_cams(lo, 0.0, 2.0, changes)  # check both ends before rendering anything
    relative_world_to_cams(hi, 0.0, 2.0, changes)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    renderer = create_renderer(backend, image_size)
    names = [f"heldout_{i:06d}" for i in range(count)]
    iterator = list(enumerate(names))
    if progress:
        from rich.progress import track

        iterator = track(iterator, description="render test set", transient=True)
    try:
        for i, name in iterator:
            if (out / name / "000.png").is_file():
                continue
            # seeds (seed, i, 0x7e57) never collide with render-dataset's (seed, i)
            obj_seed = int(np.random.SeedSequence([int(seed), i, 0x7E57]).generate_state(1)[0])
            rng = np.random.default_rng([int(seed), i, 0x7E57, 1])
            cams = relative_world_to_cams(
                float(rng.uniform(lo, hi)), float(rng.uniform(0.0, 360.0)), float(rng.uniform(*distance)), changes
            )
            images = renderer.render(procedural_object(obj_seed, procedural), cams, Light.random(rng))
            with atomic_directory(out / name, overwrite=True) as tmp:
                write_views(tmp, images, cams)
    finally:
        renderer.close()
    with atomic_write(out / "valid_paths.json", "w") as f:
        json.dump(names, f)
    with atomic_write(out / "testset.json", "w") as f:
        json.dump({"input_view": 0, "targets": ",".join(c.label for c in changes), "seed": seed,
                   "image_size": image_size, "input_elevation": list(input_elevation), "distance": list(distance),
                   "min_parts": procedural.min_parts, "max_parts": procedural.max_parts,
                   "texture_probability": procedural.texture_probability, "kind": procedural.kind},
                  f, indent=2)
    return names
