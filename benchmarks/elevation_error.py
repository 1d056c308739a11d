"""Error of the input-elevation estimator on held-out renders with known elevation.

Procedural objects (``zero123.data.objects.procedural_object``, seeds ``--seed`` onwards: held out,
the bundled model was trained on other seeds) are rendered by the dataset renderer at ``--size`` px
from a known elevation (cycling through ``--elevations``), azimuth 0, distance 1.85. For each:

* ``model``: :func:`zero123.threed.elevation.estimate_elevation` with the model (the library's
  default settings; the generated views come from the model);
* ``exact views``: the same consistency score with the views rendered at their true cameras
  instead of generated (the method's ceiling: what a perfect model would give);
* baselines in the same run: the constant 15 deg (the library's default elevation) and the best
  constant in hindsight (the median of the true elevations).

    python benchmarks/elevation_error.py                    # bundled model, 8 objects
    python benchmarks/elevation_error.py --objects 2 --steps 5   # smoke test

Prints a markdown table and the mean absolute errors (degrees).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bundled")
    p.add_argument("--objects", type=int, default=8)
    p.add_argument("--seed", type=int, default=777)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--elevations", default="0,10,20,30,40,5,25,35")
    p.add_argument("--steps", type=int, default=None, help="override the estimator's DDIM steps")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    import torch
    from PIL import Image

    from zero123.data.objects import procedural_object
    from zero123.loading import load_pipeline
    from zero123.render import Light, create_renderer
    from zero123.threed.elevation import ElevationSettings, best_elevation, candidate_score, estimate_elevation
    from zero123.threed.reconstruct import DEFAULT_INPUT_ELEVATION, input_camera, ring_world_to_cams

    settings = ElevationSettings()
    if args.steps is not None:
        settings = dataclasses.replace(settings, sampling=dataclasses.replace(settings.sampling, steps=args.steps))
    pipe = load_pipeline(args.model, device=args.device)
    renderer = create_renderer("auto", image_size=args.size)
    truths = [float(x) for x in args.elevations.split(",")]
    rows = []
    for i in range(args.objects):
        seed, truth = args.seed + i, truths[i % len(truths)]
        mesh, light = procedural_object(seed), Light.random(np.random.default_rng(seed))
        rgba = renderer.render(mesh, input_camera(truth)[None], light)[0]
        # 1. The estimator with the model
        t = time.perf_counter()
        est = estimate_elevation(pipe, Image.fromarray(rgba), settings, seed=seed)
        seconds = time.perf_counter() - t
        # 2. The same score with exact views (rendered at the true cameras)
        views = renderer.render(mesh, ring_world_to_cams(settings.cameras(), truth, settings.distance), light).astype(np.float32) / 255
        on_white = views[..., :3] * views[..., 3:] + 1 - views[..., 3:]
        inp = rgba.astype(np.float32) / 255
        exact = best_elevation(list(settings.candidates), [
            candidate_score(inp[..., :3] * inp[..., 3:] + 1 - inp[..., 3:], inp[..., 3] > 0.5, on_white, e, settings)
            for e in settings.candidates])
        raw = est.extra.get("best_candidate", est.elevation_deg)
        rows.append((seed, truth, est.elevation_deg, exact, seconds, est.method, raw))
        print(f"object {seed}: true {truth:5.1f}  model {est.elevation_deg:6.1f} ({est.method}; best candidate {raw:.1f}, "
              f"score spread {max(est.scores) - min(est.scores):.3f})  exact views {exact:6.1f}  ({seconds:.1f} s)", flush=True)
    renderer.close()

    truth = np.array([r[1] for r in rows])
    model = np.array([r[2] for r in rows])
    exact = np.array([r[3] for r in rows])
    median = float(np.median(truth))
    raw = np.array([r[6] for r in rows])
    print("\n| object | true elevation | estimate (model) | method | best candidate (model) | estimate (exact views) | seconds |")
    print("|---|---|---|---|---|---|---|")
    for seed, t, m, e, s, how, b in rows:
        print(f"| {seed} | {t:.0f} | {m:.1f} | {how} | {b:.1f} | {e:.1f} | {s:.1f} |")
    print("\n| estimator | mean abs error (deg) |")
    print("|---|---|")
    print(f"| model's generated views (library: hull consistency, fallback without a signal) | {np.abs(model - truth).mean():.1f} |")
    print(f"| model's generated views, best candidate always (no fallback) | {np.abs(raw - truth).mean():.1f} |")
    print(f"| exact views (the method's ceiling) | {np.abs(exact - truth).mean():.1f} |")
    print(f"| constant {DEFAULT_INPUT_ELEVATION:g} deg (library default) | {np.abs(DEFAULT_INPUT_ELEVATION - truth).mean():.1f} |")
    print(f"| best constant in hindsight ({median:g} deg) | {np.abs(median - truth).mean():.1f} |")
    print(f"\nmodel {args.model}, {args.objects} objects, mean {np.mean([r[4] for r in rows]):.1f} s per estimate, "
          f"torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
