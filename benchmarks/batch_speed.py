"""Batch-job throughput: views/s of ``zero123.batch.run_batch`` on the local backend and on Ray
Data (2 workers), with the bundled model; plus the design check behind "one row per pipeline call".

Every configuration runs the same manifest (ROWS rows of VIEWS views, the example image turned by
a different angle per row) into a fresh folder, side by side in one process. "wall" includes
loading the model (and, for Ray, starting the actors; not starting the cluster); "steady" counts
the views finished after the first row, over the time from the first result to the last.

The check: sampling two rows' views in ONE U-Net batch (each row's own conditioning, generators
seeded as per-row calls) against one pipeline call per row: speed, and whether the pixels are
bit-identical (they must be for outputs not to depend on the batch a row lands in).

    python benchmarks/batch_speed.py [--rows 12] [--views 4] [--steps 50] [--local-threads 1,2]

On a machine shared with other work, torch threads > 1 mostly measure OpenMP waiting for cores:
compare against the 1-thread row there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zero123.assets import EXAMPLE_IMAGE
from zero123.batch import LocalBackend, NvsTask, RayBackend, load_rows, read_results, run_batch
from zero123.nvs import SamplingSettings


def write_manifest(folder: Path, rows: int, views: int) -> Path:
    src = Image.open(EXAMPLE_IMAGE).convert("RGBA")
    lines = []
    for i in range(rows):
        src.rotate(7 * i).save(folder / f"img{i}.png")
        cams = [{"azimuth": 360 * v / views + 10 * i, "elevation": 10 * (v % 2)} for v in range(views)]
        lines.append(json.dumps({"id": f"row{i:03d}", "image": f"img{i}.png", "cameras": cams, "seed": i}))
    path = folder / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(manifest: Path, backend, steps: int, views: int) -> tuple[float, float]:
    task = NvsTask(model="bundled", sampling=SamplingSettings(steps=steps), contact_sheet=False)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = run_batch(load_rows(manifest), out, task, backend)
        wall = time.perf_counter() - t0
        done = sorted(line["finished_at"] for line in read_results(out))
    assert summary.done == len(done) and not summary.failed, summary.failed
    steady = (len(done) - 1) * views / max(done[-1] - done[0], 1e-9)
    return summary.done * views / wall, steady


def cross_row_check(steps: int, views: tuple[int, int]) -> tuple[float, float, int, int]:
    """Seconds for 2 rows as 2 pipeline calls vs 1 shared U-Net batch; differing pixel values / total."""
    from zero123.camera import RelativeCamera, embed_cameras
    from zero123.loading import load_pipeline
    from zero123.nvs import generate_views, prepare_input
    from zero123.pipeline import ImageConditioning
    from zero123.schedule import set_timesteps

    pipe = load_pipeline("bundled", device="cpu", dtype="fp32")
    src = Image.open(EXAMPLE_IMAGE)
    prepared = [prepare_input(src), prepare_input(src.rotate(30))]
    cams = [[{"azimuth": 360 * v / n + 20 * r, "elevation": 10.0 * r} for v in range(n)] for r, n in enumerate(views)]
    settings = SamplingSettings(steps=steps)
    t0 = time.perf_counter()
    single = [generate_views(pipe, p, c, settings=settings, seed=100 * r) for r, (p, c) in enumerate(zip(prepared, cams))]
    t_single = time.perf_counter() - t0

    t0 = time.perf_counter()
    with torch.no_grad():
        conds, poses, gens = [], [], []
        for r, (p, c) in enumerate(zip(prepared, cams)):
            conds.append(pipe.encode_image(pipe.image_to_tensor(p.image)).repeat(len(c)))
            poses.append(embed_cameras([RelativeCamera.from_params(x) for x in c], pipe.camera_embedding, None))
            gens += [torch.Generator().manual_seed(100 * r + i) for i in range(len(c))]
        cond = ImageConditioning(torch.cat([c.image_embeds for c in conds]), torch.cat([c.concat_latents for c in conds]))
        pose = torch.cat(poses)
        h = pipe.image_size // pipe.vae_scale_factor
        shape = (len(gens), pipe.unet.config.out_channels, h, h)
        latents = pipe._randn(shape, gens, "cpu", torch.float32) * pipe.scheduler.init_noise_sigma
        step_kwargs = pipe._step_kwargs(pipe.scheduler, settings.eta)
        for t in set_timesteps(pipe.scheduler, steps, "original", device="cpu"):
            out = pipe.predict_model_output(pipe.scheduler.scale_model_input(latents, t), t, cond, pose, settings.guidance).float()
            extra = pipe._step_extra(pipe.scheduler, step_kwargs, settings.eta, shape, gens, "cpu")
            latents = pipe.scheduler.step(out, t, latents, **extra, return_dict=False)[0]
        images = (pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0] / 2 + 0.5).clamp(0, 1)
        batched = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    t_batched = time.perf_counter() - t0
    ref = np.stack([np.asarray(v.image) for s in single for v in s.views])
    return t_single, t_batched, int((ref != batched).sum()), ref.size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=12)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--local-threads", default="1,2", help="torch threads of the local runs, comma-separated")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory() as d:
        manifest = write_manifest(Path(d), args.rows, args.views)
        for threads in (int(t) for t in args.local_threads.split(",")):
            backend = LocalBackend(device="cpu", threads=threads)
            results.append((f"local, 1 process x {threads} thread(s)", *run(manifest, backend, args.steps, args.views)))
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            ray_backend = RayBackend(workers=2, cpus_per_worker=0.5, device="cpu", threads=1)
            results.append(("ray, 2 workers x 1 thread", *run(manifest, ray_backend, args.steps, args.views)))
        finally:
            ray.shutdown()
    torch.set_num_threads(1)
    checks = [(v, *cross_row_check(args.steps, v)) for v in ((args.views, args.views - 1), (args.views, args.views))]

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
          f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"bundled model, {args.rows} rows x {args.views} views, {args.steps} steps, fp32, no contact sheets\n")
    base = results[0][2]
    print(f"| backend | views/s (wall) | views/s (steady) | steady vs {results[0][0]} |")
    print("|---|---:|---:|---:|")
    for label, wall, steady in results:
        print(f"| {label} | {wall:.2f} | {steady:.2f} | {steady / base:.2f}x |")
    print("\ncross-row batching (1 thread): 2 rows, one pipeline call per row vs one shared U-Net batch")
    for views, t_single, t_batched, differing, total in checks:
        print(f"  {views[0]} + {views[1]} views: {t_single:.2f} s vs {t_batched:.2f} s ({t_single / t_batched:.2f}x); "
              f"{differing} of {total} pixel values differ")


if __name__ == "__main__":
    main()
