"""Novel-view speed: our batched pipeline vs a naive per-view, per-branch loop (one process).

The naive loop is how the diffusers community pipeline and the original demo work: every step,
for every view and every guidance branch, re-encode the input image (CLIP + VAE) and call the
U-Net with batch 1. Ours encodes once per call and sends all views x both branches through the
U-Net in one batched call per step.

    python benchmarks/nvs_speed.py                 # full-size architecture, random weights, CPU
    python benchmarks/nvs_speed.py --preset tiny --steps 2   # smoke test

Prints a markdown table: seconds per denoising step (encoding included, decoding excluded) and
peak RSS for 1 and 4 views; then the small preset end to end (50 steps, decode included) per view.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import torch


class PeakRSS:
    """Samples this process's resident set size every 5 ms; ``peak`` in GiB over the block."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def __enter__(self):
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss()) / 2**30


@torch.no_grad()
def naive_denoise(pipe, image, poses, steps, guidance, generator):
    """Baseline: re-encode every step, U-Net per view and per guidance branch (batch 1)."""
    from zero123.schedule import set_timesteps

    timesteps = set_timesteps(pipe.scheduler, steps, "diffusers")
    h = pipe.image_size // pipe.vae_scale_factor
    latents = [torch.randn(1, 4, h, h, generator=generator) for _ in range(len(poses))]
    for t in timesteps:
        for v in range(len(poses)):
            cond = pipe.encode_image(image)  # re-encoded for every view, every step
            token = pipe.cc_projection(cond.image_embeds, poses[v : v + 1])
            x = latents[v]
            e_c = pipe.unet(torch.cat([x, cond.concat_latents], 1), t, encoder_hidden_states=token).sample
            e_u = pipe.unet(torch.cat([x, torch.zeros_like(x)], 1), t, encoder_hidden_states=torch.zeros_like(token)).sample
            eps = e_u + guidance * (e_c - e_u)
            latents[v] = pipe.scheduler.step(eps, t, x, eta=1.0, generator=generator).prev_sample
    return torch.cat(latents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--views", default="1,4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--small-steps", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from zero123.camera import RelativeCamera, embed_cameras
    from zero123.models.factory import PRESETS, build_components
    from zero123.pipeline import Zero123Pipeline

    t0 = time.perf_counter()
    pipe = Zero123Pipeline(**build_components(args.preset, seed=0))
    pipe.set_progress_bar_config(disable=True)
    n_unet = sum(p.numel() for p in pipe.unet.parameters()) / 1e6
    print(f"built {args.preset} ({n_unet:.0f}M-parameter U-Net, {pipe.image_size}px) in {time.perf_counter() - t0:.1f}s", flush=True)
    image = torch.rand(3, pipe.image_size, pipe.image_size)
    image_m11 = pipe.image_to_tensor(image)

    rows = []
    for n in [int(v) for v in args.views.split(",")]:
        cams = [RelativeCamera.from_degrees(azimuth=360.0 * i / n, elevation=10.0) for i in range(n)]
        poses = embed_cameras(cams)
        # warm-up of each configuration (oneDNN primitives are built per batch shape on first use)
        pipe(image, cameras=cams, num_inference_steps=1, timestep_spacing="diffusers", output_type="latent")
        naive_denoise(pipe, image_m11, poses, 1, 3.0, torch.Generator().manual_seed(0))
        with PeakRSS() as rss:
            t = time.perf_counter()
            pipe(image, cameras=cams, num_inference_steps=args.steps, timestep_spacing="diffusers",
                 generator=torch.Generator().manual_seed(0), output_type="latent")
            ours = (time.perf_counter() - t) / args.steps
        ours_rss = rss.peak
        with PeakRSS() as rss:
            t = time.perf_counter()
            naive_denoise(pipe, image_m11, poses, args.steps, 3.0, torch.Generator().manual_seed(0))
            naive = (time.perf_counter() - t) / args.steps
        rows.append((n, ours, naive, ours_rss, rss.peak))
        print(f"  {n} view(s): ours {ours:.2f} s/step, naive {naive:.2f} s/step", flush=True)

    print(f"\n### {args.preset} architecture, random weights, CPU fp32, {args.threads} threads, {args.steps} steps per run\n")
    print("| views | ours s/step | naive s/step | speed-up | ours peak RSS GiB | naive peak RSS GiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, ours, naive, r1, r2 in rows:
        print(f"| {n} | {ours:.2f} | {naive:.2f} | {naive / ours:.2f}x | {r1:.2f} | {r2:.2f} |")

    if "small" in PRESETS and args.small_steps > 0:
        del pipe
        small = Zero123Pipeline(**build_components("small", seed=0))
        small.set_progress_bar_config(disable=True)
        print(f"\n### small preset end to end ({small.image_size}px, {args.small_steps} steps, decode included)\n")
        print("| views | s per call | s per view |")
        print("|---:|---:|---:|")
        for n in (1, 4):
            cams = [RelativeCamera.from_degrees(azimuth=360.0 * i / n) for i in range(n)]
            small(torch.rand(3, 64, 64), cameras=cams, num_inference_steps=2, output_type="pil")  # warm-up
            t = time.perf_counter()
            small(torch.rand(3, 64, 64), cameras=cams, num_inference_steps=args.small_steps, output_type="pil")
            dt = time.perf_counter() - t
            print(f"| {n} | {dt:.2f} | {dt / n:.2f} |")


if __name__ == "__main__":
    main()
