"""Image-to-3D speed per stage: the posed-views route (ours vs its plain twin) and the fast route.

Posed views: the example object's ground-truth mesh rendered from 20 cameras at 64 px, fitted with
the default chain ("ours": visual-hull start, empty-space skipping, early ray termination) and with
its plain twin (every sample of every ray evaluated, no hull start), same steps and seed; both
meshes are scored against the ground truth, so the speed-up is at equal quality.

Fast route: the example image with the bundled model (default settings, 50 DDIM steps). With
``--model full-random`` the generation is timed with the full-size architecture (random weights,
256 px; the real cost) and the fit/mesh/texture stages on ground-truth views of the same ring at
256 px (random weights generate noise, which has no shape to fit), with the ``quality`` chain.

    python benchmarks/threed_speed.py                       # this CPU: both routes
    python benchmarks/threed_speed.py --route image --model full-random --device cuda   # a GPU
    python benchmarks/threed_speed.py --route image --model full-random --arch tiny --steps 2 --fit-steps 20  # smoke test

Prints markdown tables: wall seconds per stage (and process CPU seconds, which a shared machine
inflates less), samples evaluated, volume IoU.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def sphere_cameras(n: int, distance: float = 1.9) -> np.ndarray:
    from zero123.camera import world_to_cams_from_spherical

    i = np.arange(n) + 0.5
    return world_to_cams_from_spherical(torch.tensor(np.arccos(1 - 2 * i / n)), torch.tensor(np.pi * (1 + 5**0.5) * i),
                                        torch.full((n,), distance)).numpy()


def example_object():
    from make_docs_figures import EXAMPLE_OBJECTS, EXAMPLE_SEED

    from zero123.data.objects import procedural_object
    from zero123.render import Light

    return procedural_object(EXAMPLE_SEED, EXAMPLE_OBJECTS), Light.random(np.random.default_rng(EXAMPLE_SEED))


def posed_views(device: str) -> None:
    from zero123.render import create_renderer
    from zero123.threed.fit import PosedViews
    from zero123.threed.metrics import evaluate_mesh
    from zero123.threed.reconstruct import ReconstructSettings, reconstruct_from_views

    mesh, light = example_object()
    cams = sphere_cameras(20)
    views = PosedViews.from_rgba(create_renderer("auto", image_size=64).render(mesh, cams, light), cams)
    ours = ReconstructSettings()
    plain = dataclasses.replace(ours, fit=dataclasses.replace(ours.fit, skipping=False, hull_share=0.0))
    print(f"\n### posed views: 20 views, 64 px, {ours.fit.steps} steps, device {device}\n")
    print("| chain | fit s | mesh s | texture s | total s (cpu s) | samples evaluated | volume IoU | Chamfer | F-score@0.05 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, settings in (("ours", ours), ("plain twin", plain)):
        cpu = time.process_time()
        rec = reconstruct_from_views(views, settings, device=device)
        cpu = time.process_time() - cpu
        s = evaluate_mesh(rec.mesh, mesh)
        t = rec.timings
        print(f"| {name} | {t['fit']:.1f} | {t['mesh']:.1f} | {t['texture']:.1f} | {t['total']:.1f} ({cpu:.1f}) | "
              f"{rec.fit.samples_evaluated:.1%} | {s.volume_iou:.3f} | {s.chamfer:.4f} | {s.fscore:.3f} |", flush=True)


def image_route(device: str, model: str) -> None:
    from zero123.assets import EXAMPLE_IMAGE
    from zero123.loading import load_pipeline
    from zero123.threed.reconstruct import ImageRouteSettings, reconstruct_from_image, silhouette_iou

    pipe = load_pipeline(model, device=device)
    settings = ImageRouteSettings()
    reconstruct_from_image(pipe, EXAMPLE_IMAGE, elevation_deg=20.0,  # warm-up (allocations, oneDNN/cuDNN plans)
                           settings=dataclasses.replace(settings, sampling=dataclasses.replace(settings.sampling, steps=2),
                                                        reconstruct=dataclasses.replace(settings.reconstruct, fit=dataclasses.replace(settings.reconstruct.fit, steps=5))),
                           device=device)
    cpu = time.process_time()
    rec = reconstruct_from_image(pipe, EXAMPLE_IMAGE, elevation_deg=20.0, settings=settings, device=device)
    cpu = time.process_time() - cpu
    t = rec.timings
    iou = silhouette_iou(rec.mesh, rec.input_world_to_cam, rec.input_mask)
    print(f"\n### fast route: {model} model ({pipe.image_size} px), {len(settings.ring())} generated views, "
          f"{settings.sampling.steps} DDIM steps, {settings.reconstruct.fit.steps} fit steps, device {device}\n")
    print("| generate s | fit s | mesh s | texture s | total s (cpu s) | input silhouette IoU |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {t['generate']:.1f} | {t['fit']:.1f} | {t['mesh']:.1f} | {t['texture']:.1f} | {t['total']:.1f} ({cpu:.1f}) | {iou:.3f} |")


def image_route_full_random(device: str, arch: str = "full", steps: int | None = None, fit_steps: int | None = None) -> None:
    """Generation with the full-size random model; the rest on ground-truth views of the same ring."""
    from zero123.models.factory import build_components
    from zero123.nvs import generate_views, prepare_input
    from zero123.pipeline import Zero123Pipeline
    from zero123.render import create_renderer
    from zero123.threed.fit import PosedViews
    from zero123.threed.reconstruct import (PRESETS, ImageRouteSettings, input_camera, reconstruct_from_views,
                                            ring_world_to_cams)

    from zero123.assets import EXAMPLE_IMAGE

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    pipe = Zero123Pipeline(**build_components(arch, seed=0)).to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    chain = PRESETS["quality"]
    if fit_steps is not None:
        chain = dataclasses.replace(chain, fit=dataclasses.replace(chain.fit, steps=fit_steps))
    settings = ImageRouteSettings(reconstruct=chain)
    if steps is not None:
        settings = dataclasses.replace(settings, sampling=dataclasses.replace(settings.sampling, steps=steps))
    cams = settings.ring()
    prepared = prepare_input(EXAMPLE_IMAGE, settings.preprocessing)
    generate_views(pipe, prepared, cams[:2], settings=dataclasses.replace(settings.sampling, steps=2))  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    generate_views(pipe, prepared, cams, settings=settings.sampling, cond_elevation=20.0)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    gen = time.perf_counter() - t
    vram = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    mesh, light = example_object()
    w2c = np.concatenate([input_camera(20.0)[None], ring_world_to_cams(cams, 20.0, settings.distance)])
    views = PosedViews.from_rgba(create_renderer("auto", image_size=pipe.image_size).render(mesh, w2c, light), w2c,
                                 weights=[settings.input_weight] + [1.0] * len(cams))
    rec = reconstruct_from_views(views, settings.reconstruct, device=device)
    r = rec.timings
    print(f"\n### fast route, {arch} architecture (random weights, {pipe.image_size} px, {dtype}), {len(cams)} views, "
          f"{settings.sampling.steps} DDIM steps; fit/mesh/texture ('quality' chain) on ground-truth views of that ring; {device}\n")
    print("| generate s | peak VRAM GiB | fit s | mesh s | texture s | image to textured mesh s |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {gen:.1f} | {vram:.1f} | {r['fit']:.1f} | {r['mesh']:.1f} | {r['texture']:.1f} | {gen + r['total']:.1f} |")
    print(f"\nmesh steps (s): {rec.mesh.timings}\ntexture steps (s): {rec.textured.timings}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", choices=("views", "image", "both"), default="both")
    parser.add_argument("--model", default="bundled", help="bundled, a model folder, or full-random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arch", default="full", help="full-random only: the architecture preset (tiny for a smoke test)")
    parser.add_argument("--steps", type=int, default=None, help="full-random only: DDIM steps (default 50)")
    parser.add_argument("--fit-steps", type=int, default=None, help="full-random only: fit steps (default: the quality chain's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.route in ("views", "both"):
        posed_views(args.device)
    if args.route in ("image", "both"):
        if args.model == "full-random":
            image_route_full_random(args.device, args.arch, args.steps, args.fit_steps)
        else:
            image_route(args.device, args.model)


if __name__ == "__main__":
    main()
