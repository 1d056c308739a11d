"""Novel-view speed, side by side in one process: a naive loop, today's default (the "original"
quality preset) and the "fast" preset.

* naive: how the diffusers community pipeline and the original demo work: every step, for every
  view and every guidance branch, re-encode the input image (CLIP + VAE) and call the U-Net with
  batch 1 (DDIM, 50 steps);
* original: :class:`zero123.Zero123Pipeline` with ``zero123.nvs.QUALITY_PRESETS["original"]``
  (image encoded once per call, all views x both branches in one batched U-Net call per step;
  DDIM, 50 steps = 49 on the original grid), the Python API's default;
* fast: the same pipeline with ``QUALITY_PRESETS["fast"]`` (fewer steps of a multistep solver),
  the CLI's default.

Full-size architecture (random weights, 860M-parameter U-Net, 256 px): a full 50-step view takes
minutes on a 2-core CPU, so each way is timed for ``--steps`` denoising steps (``--naive-steps``
for the naive loop) plus one image encoding and one decoding, and the seconds per view are
EXTRAPOLATED: ``encode + steps x (seconds per step) + decode``; peak RSS is measured. The bundled
model (64 px) is then run end to end with every step, decoding included.

    nice -n 19 python benchmarks/nvs_speed.py                      # full size + bundled
    python benchmarks/nvs_speed.py --preset tiny --steps 2 --bundled-views 1   # smoke test
"""

from __future__ import annotations

import argparse
import os
import statistics
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


def _cams(n):
    from zero123.camera import RelativeCamera

    return [RelativeCamera.from_degrees(azimuth=360.0 * (i + 1) / (n + 1), elevation=10.0) for i in range(n)]


def _preset_call(pipe, image, cams, settings, steps=None, output_type="pil", stamps=None):
    """One pipeline call with ``settings``; ``stamps`` (a list) gets ``time.perf_counter()`` after each step."""
    callback = None
    if stamps is not None:
        def callback(p, i, t, tensors):
            stamps.append(time.perf_counter())
            return {}
    return pipe(image, cameras=cams, num_inference_steps=steps or settings.steps, guidance_scale=settings.guidance,
                eta=settings.eta, solver=settings.solver, generator=[torch.Generator().manual_seed(i) for i in range(len(cams))],
                output_type=output_type, callback_on_step_end=callback)


def full_size(args, presets) -> list[str]:
    """Per-step costs on the full-size architecture; seconds per view extrapolated to each way's step count."""
    from zero123.camera import embed_cameras
    from zero123.models.factory import build_components
    from zero123.pipeline import Zero123Pipeline

    t0 = time.perf_counter()
    pipe = Zero123Pipeline(**build_components(args.preset, seed=0))
    pipe.set_progress_bar_config(disable=True)
    n_unet = sum(p.numel() for p in pipe.unet.parameters()) / 1e6
    print(f"built {args.preset} ({n_unet:.0f}M-parameter U-Net, {pipe.image_size}px) in {time.perf_counter() - t0:.1f}s", flush=True)
    image = torch.rand(3, pipe.image_size, pipe.image_size)
    image_m11 = pipe.image_to_tensor(image)
    lines = [f"### {args.preset} architecture ({n_unet:.0f}M-parameter U-Net, {pipe.image_size} px), random weights, CPU fp32, "
             f"{args.threads} threads; {args.steps} timed steps ({args.naive_steps} for naive), per-view seconds extrapolated",
             "", "| views | way | solver, steps | s / step | encode + decode s | s / view (extrapolated) | peak RSS GiB |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for n in [int(v) for v in args.views.split(",")]:
        cams = _cams(n)
        poses = embed_cameras(cams)
        # 1. decode once (every way pays it once per call)
        with torch.no_grad():
            lat = torch.randn(n, 4, pipe.image_size // 8, pipe.image_size // 8)
            t = time.perf_counter()
            pipe.vae.decode(lat / pipe.vae.config.scaling_factor)
            t_dec = time.perf_counter() - t
        # 2. the naive loop: naive_steps steps (its step includes re-encoding)
        with PeakRSS() as rss:
            t = time.perf_counter()
            naive_denoise(pipe, image_m11, poses, args.naive_steps, 3.0, torch.Generator().manual_seed(0))
            naive = (time.perf_counter() - t) / args.naive_steps
        rows = [("naive", "ddim, 50 (49 run)", naive, t_dec, 49 * naive + t_dec, rss.peak)]
        # 3. the pipeline with each preset's solver, args.steps + 1 steps: the step cost is the median time
        #    between step callbacks, the encoding is the time to the first callback minus one step
        for name, s in presets.items():
            stamps: list[float] = []
            with PeakRSS() as rss:
                t = time.perf_counter()
                _preset_call(pipe, image, cams, s, steps=args.steps + (2 if s.solver == "ddim" else 1), output_type="latent",
                             stamps=stamps)
            per_step = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
            t_enc = max(stamps[0] - t - per_step, 0.0)
            run = s.steps - 1 if s.solver == "ddim" else s.steps
            rows.append((name, f"{s.solver}, {s.steps}" + (f" ({run} run)" if run != s.steps else ""), per_step, t_enc + t_dec,
                         t_enc + run * per_step + t_dec, rss.peak))
        for way, solver, per_step, extra, total, peak in rows:
            lines.append(f"| {n} | {way} | {solver} | {per_step:.2f} | {extra:.2f} | {total / n:.1f} | {peak:.2f} |")
            print(f"  {n} view(s) {way}: {per_step:.2f} s/step, {total / n:.1f} s/view", flush=True)
    del pipe
    return lines


def bundled(args, presets) -> list[str]:
    """The bundled model end to end (every step, decoding included), per call and per view."""
    from zero123.camera import embed_cameras
    from zero123.loading import load_pipeline

    pipe = load_pipeline("bundled", device="cpu")
    pipe.set_progress_bar_config(disable=True)
    image = torch.rand(3, pipe.image_size, pipe.image_size)
    image_m11 = pipe.image_to_tensor(image)
    lines = [f"### bundled model ({pipe.image_size} px, {pipe.prediction_type}) end to end, decode included, {args.threads} threads",
             "", "| views | way | solver, steps | s / call | s / view | peak RSS GiB |", "|---:|---|---|---:|---:|---:|"]
    for n in [int(v) for v in args.bundled_views.split(",")]:
        cams = _cams(n)
        poses = embed_cameras(cams)
        _preset_call(pipe, image, cams, presets["original"], steps=3)  # warm-up
        with PeakRSS() as rss:
            t = time.perf_counter()
            lat = naive_denoise(pipe, image_m11, poses, 50, 3.0, torch.Generator().manual_seed(0))
            with torch.no_grad():
                pipe.vae.decode(lat / pipe.vae.config.scaling_factor)
            dt = time.perf_counter() - t
        lines.append(f"| {n} | naive | ddim, 50 | {dt:.2f} | {dt / n:.2f} | {rss.peak:.2f} |")
        for name, s in presets.items():
            with PeakRSS() as rss:
                t = time.perf_counter()
                _preset_call(pipe, image, cams, s)
                dt = time.perf_counter() - t
            lines.append(f"| {n} | {name} | {s.solver}, {s.steps} | {dt:.2f} | {dt / n:.2f} | {rss.peak:.2f} |")
        print(f"  bundled {n} view(s) done", flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full", help="model factory preset for the random-weights part ('none' to skip)")
    parser.add_argument("--steps", type=int, default=2, help="timed pipeline steps on the random-weights model")
    parser.add_argument("--naive-steps", type=int, default=1)
    parser.add_argument("--views", default="1", help="view counts for the random-weights model")
    parser.add_argument("--bundled-views", default="1,4", help="view counts for the bundled model ('' to skip)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from zero123.nvs import QUALITY_PRESETS

    load0 = os.getloadavg()
    out = []
    if args.preset != "none":
        out += full_size(args, QUALITY_PRESETS) + [""]
    if args.bundled_views:
        out += bundled(args, QUALITY_PRESETS)
    load1 = os.getloadavg()
    print(f"\n1-minute load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end "
          f"(5-minute {load1[1]:.1f}); {os.cpu_count()} CPUs\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
