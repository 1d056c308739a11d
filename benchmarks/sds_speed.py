"""Image-to-3D speed of the score-distillation route per stage, beside the fast route, in one run.

Default: the example image with the bundled model on this machine's CPU: the SDS route's default
preset (``fast``) with the elevation estimated (``auto``, as the CLI's default) and the fast route
(generated ring, default settings) on the same image; both meshes are scored by the input
silhouette IoU from the input camera.

With ``--model full-random`` the SDS route runs with the full-size architecture (random weights,
256 px renders into the VAE, fp16 on CUDA): the real per-step cost of the guidance on a GPU
(random weights give meaningless gradients, so only the times count).

    python benchmarks/sds_speed.py                                      # this CPU, bundled model
    python benchmarks/sds_speed.py --model full-random --device cuda    # a GPU (prepared, not run here)
    python benchmarks/sds_speed.py --model full-random --arch tiny --fit-steps 20   # smoke test of that path

Prints markdown tables: wall seconds per stage (process CPU seconds beside the total).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch


def _row(name: str, t: dict, cpu: float, iou: float) -> str:
    cells = [f"{t.get(k, 0.0):.1f}" for k in ("elevation", "generate", "fit", "sds", "mesh", "texture")]
    return f"| {name} | " + " | ".join(cells) + f" | {t['total']:.1f} ({cpu:.1f}) | {iou:.3f} |"


def bundled(device: str, model: str, fit_steps: int | None) -> None:
    from zero123.assets import EXAMPLE_IMAGE
    from zero123.loading import load_pipeline
    from zero123.threed.reconstruct import ImageRouteSettings, reconstruct_from_image, silhouette_iou
    from zero123.threed.sds import SDSSettings, reconstruct_sds

    pipe = load_pipeline(model, device=device)
    sds = SDSSettings() if fit_steps is None else dataclasses.replace(SDSSettings(), steps=fit_steps)
    reconstruct_sds(pipe, EXAMPLE_IMAGE, elevation_deg=20.0, settings=dataclasses.replace(sds, steps=40, warmup_steps=5),
                    device=device)  # warm-up (allocations, oneDNN plans)
    rows = []
    cpu = time.process_time()
    rec = reconstruct_sds(pipe, EXAMPLE_IMAGE, elevation_deg="auto", settings=sds, device=device)
    rows.append(_row(f"sds (fast preset, {sds.steps} steps, elevation auto)", rec.timings, time.process_time() - cpu,
                     silhouette_iou(rec.mesh, rec.input_world_to_cam, rec.input_mask)))
    sds_rec = rec
    cpu = time.process_time()
    rec = reconstruct_from_image(pipe, EXAMPLE_IMAGE, elevation_deg=20.0, settings=ImageRouteSettings(), device=device)
    rows.append(_row("fast route (views, default)", rec.timings, time.process_time() - cpu,
                     silhouette_iou(rec.mesh, rec.input_world_to_cam, rec.input_mask)))
    print(f"\n### image to 3D: {model} model ({pipe.image_size} px), device {device}, torch threads {torch.get_num_threads()}\n")
    print("| route | elevation s | generate s | fit s | sds s | mesh s | texture s | total s (cpu s) | input silhouette IoU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print(f"\nsds: {sds_rec.fit.seconds / sds.steps * 1000:.0f} ms per step; estimated elevation "
          f"{sds_rec.extra['elevation_deg']:.1f} ({sds_rec.extra['elevation_estimate']['method']})")


def full_random(device: str, arch: str, fit_steps: int | None) -> None:
    from zero123.assets import EXAMPLE_IMAGE
    from zero123.models.factory import build_components
    from zero123.pipeline import Zero123Pipeline
    from zero123.threed.sds import SDSSettings, reconstruct_sds

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    pipe = Zero123Pipeline(**build_components(arch, seed=0)).to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    sds = SDSSettings() if fit_steps is None else dataclasses.replace(SDSSettings(), steps=fit_steps, warmup_steps=min(5, fit_steps - 1))
    reconstruct_sds(pipe, EXAMPLE_IMAGE, elevation_deg=20.0, settings=dataclasses.replace(sds, steps=10, warmup_steps=2),
                    device=device)  # warm-up (cuDNN plans)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    cpu = time.process_time()
    rec = reconstruct_sds(pipe, EXAMPLE_IMAGE, elevation_deg=20.0, settings=sds, device=device)
    cpu = time.process_time() - cpu
    vram = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    t = rec.timings
    print(f"\n### sds route, {arch} architecture (random weights, {pipe.image_size} px, {dtype}), {sds.steps} steps, {device}\n")
    print("| sds s | ms per step | mesh s | texture s | total s (cpu s) | peak VRAM GiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {t['sds']:.1f} | {t['sds'] / sds.steps * 1000:.0f} | {t['mesh']:.1f} | {t['texture']:.1f} | {t['total']:.1f} ({cpu:.1f}) | {vram:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bundled", help="bundled, a model folder, or full-random")
    p.add_argument("--arch", default="full", help="full-random only: the architecture preset (tiny for a smoke test)")
    p.add_argument("--fit-steps", type=int, default=None, help="override the preset's SDS steps")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if args.model == "full-random":
        full_random(args.device, args.arch, args.fit_steps)
    else:
        bundled(args.device, args.model, args.fit_steps)


if __name__ == "__main__":
    main()
