"""The GPU measurement in one run: seconds per view, peak VRAM, fp16/bf16 vs fp32, offload, compile.

On random weights of the full-size architecture (860M-parameter U-Net, 256 px) by default:

1. eps difference of fp16 and bf16 against fp32: one guided U-Net output (``predict_model_output``)
   on the same inputs, max abs and relative RMS;
2. seconds per view for each dtype with SDPA (diffusers' default ``AttnProcessor2_0``), at the
   "original" preset (DDIM 50 = 49 steps) and the "fast" preset, for 1 view and 8 views in one
   call (``vae.enable_slicing()`` for 8), warm (one untimed call first), decode included; whether
   any output is non-finite (then the VAE is switched to fp32 and the row repeated, marked);
3. peak VRAM (``torch.cuda.max_memory_allocated``) for 1 view at 50 steps, pipeline on the GPU vs
   ``enable_model_cpu_offload()``;
4. ``torch.compile`` of the U-Net (``--compile`` modes, e.g. ``default`` and ``reduce-overhead`` =
   CUDA graphs): first-call (compile) seconds and seconds per view after.

    python benchmarks/gpu_check.py --out gpu.json                       # on a CUDA machine
    python benchmarks/gpu_check.py --arch tiny --device cpu --dtypes bf16 --compile none   # CPU smoke

Prints a markdown summary; ``--out`` also writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def build(arch: str, dtype: torch.dtype, device: str | None):
    from zero123.models.factory import build_components
    from zero123.pipeline import Zero123Pipeline

    pipe = Zero123Pipeline(**build_components(arch, seed=0))
    pipe.set_progress_bar_config(disable=True)
    pipe.to(dtype=dtype)
    return pipe.to(device) if device else pipe


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def sample(pipe, n_views: int, settings) -> torch.Tensor:
    from zero123.camera import RelativeCamera

    cams = [RelativeCamera.from_degrees(azimuth=360.0 * (i + 1) / (n_views + 1), elevation=10.0) for i in range(n_views)]
    image = torch.rand(3, pipe.image_size, pipe.image_size, generator=torch.Generator().manual_seed(0))
    return pipe(image, cameras=cams, num_inference_steps=settings.steps, guidance_scale=settings.guidance, eta=settings.eta,
                solver=settings.solver, generator=[torch.Generator().manual_seed(i) for i in range(n_views)], output_type="pt").images


def timed_sample(pipe, n_views: int, settings, device: str) -> tuple[float, bool]:
    sync(device)
    t = time.perf_counter()
    out = sample(pipe, n_views, settings)
    sync(device)
    return time.perf_counter() - t, bool(torch.isfinite(out).all())


@torch.no_grad()
def eps_difference(arch: str, device: str, dtypes: list[str]) -> dict:
    """Guided U-Net output of each dtype against fp32 on the same inputs (full pipeline conditioning)."""
    from zero123.camera import RelativeCamera, embed_cameras

    ref_pipe = build(arch, torch.float32, device)
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, ref_pipe.image_size, ref_pipe.image_size, generator=g) * 2 - 1
    h = ref_pipe.image_size // ref_pipe.vae_scale_factor
    x = torch.randn(2, 4, h, h, generator=g).to(device)
    poses = embed_cameras([RelativeCamera.from_degrees(azimuth=90.0), RelativeCamera.from_degrees(elevation=20.0)]).to(device)
    results = {}
    ref = {t: ref_pipe.predict_model_output(x, t, ref_pipe.encode_image(image.to(device)), poses, 3.0).float() for t in (900, 300)}
    del ref_pipe
    for name in dtypes:
        if name == "fp32":
            continue
        pipe = build(arch, DTYPES[name], device)
        cond = pipe.encode_image(image.to(device))
        for t in (900, 300):
            got = pipe.predict_model_output(x, t, cond, poses, 3.0).float()
            d = got - ref[t]
            results[f"{name} t={t}"] = {"max_abs": float(d.abs().max()), "rel_rms": float(d.norm() / ref[t].norm()),
                                        "finite": bool(torch.isfinite(got).all())}
        del pipe
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="full")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtypes", default="fp16,bf16,fp32")
    parser.add_argument("--views", default="1,8")
    parser.add_argument("--compile", default="default,reduce-overhead", help="torch.compile modes to try, or 'none'")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from zero123.nvs import QUALITY_PRESETS

    dev = args.device
    is_cuda = dev.startswith("cuda")
    dtypes = [d for d in args.dtypes.split(",") if d]
    views = [int(v) for v in args.views.split(",")]
    report: dict = {"arch": args.arch, "device": dev, "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name(0) if is_cuda else None, "presets": {k: vars(v) for k, v in QUALITY_PRESETS.items()}}
    if is_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 rows use TF32 matmuls, as diffusers users do
        torch.backends.cudnn.allow_tf32 = True

    # 1. eps difference against fp32
    report["eps_vs_fp32"] = eps_difference(args.arch, dev, dtypes)
    print("eps vs fp32:", json.dumps(report["eps_vs_fp32"]), flush=True)

    # 2. seconds per view, per dtype, preset and view count (VAE in fp32 if the dtype gives non-finite images)
    report["seconds"] = []
    for name in dtypes:
        pipe = build(args.arch, DTYPES[name], dev)
        pipe.vae.enable_slicing()
        sample(pipe, 1, QUALITY_PRESETS["fast"])  # warm-up (cuDNN autotune, allocator)
        for quality, s in QUALITY_PRESETS.items():
            for n in views:
                dt, finite = timed_sample(pipe, n, s, dev)
                row = {"dtype": name, "quality": quality, "views": n, "s_per_call": dt, "s_per_view": dt / n, "finite": finite, "vae": name}
                if not finite and name != "fp32":
                    pipe.vae.to(torch.float32)
                    dt, finite = timed_sample(pipe, n, s, dev)
                    row.update(s_per_call=dt, s_per_view=dt / n, finite=finite, vae="fp32")
                    pipe.vae.to(DTYPES[name])
                report["seconds"].append(row)
                print(row, flush=True)
        del pipe
        if is_cuda:
            torch.cuda.empty_cache()

    # 3. peak VRAM for one view at 50 steps: on the GPU vs model CPU offload
    if is_cuda:
        half = "fp16" if "fp16" in dtypes else dtypes[0]
        report["peak_vram_gib"] = {}
        for mode in ("gpu", "offload"):
            pipe = build(args.arch, DTYPES[half], None if mode == "offload" else dev)
            if mode == "offload":
                pipe.enable_model_cpu_offload()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            dt, finite = timed_sample(pipe, 1, QUALITY_PRESETS["original"], dev)
            report["peak_vram_gib"][mode] = {"dtype": half, "gib": torch.cuda.max_memory_allocated() / 2**30, "s_per_view": dt,
                                             "finite": finite}
            print(mode, report["peak_vram_gib"][mode], flush=True)
            del pipe
            torch.cuda.empty_cache()

    # 4. torch.compile of the U-Net
    report["compile"] = []
    for mode in [m for m in args.compile.split(",") if m and m != "none"]:
        half = "fp16" if "fp16" in dtypes and is_cuda else dtypes[0]
        pipe = build(args.arch, DTYPES[half], dev)
        pipe.unet = torch.compile(pipe.unet, mode=mode)
        t_first, _ = timed_sample(pipe, 1, QUALITY_PRESETS["fast"], dev)
        for n in views:
            dt, finite = timed_sample(pipe, n, QUALITY_PRESETS["original"], dev)
            row = {"mode": mode, "dtype": half, "views": n, "first_call_s": t_first, "s_per_view_50": dt / n, "finite": finite}
            report["compile"].append(row)
            print(row, flush=True)
        del pipe
        torch._dynamo.reset()

    # 5. summary
    print(f"\n### {args.arch} architecture, random weights, {report['gpu'] or dev}, torch {torch.__version__}\n")
    print("| dtype | VAE | quality | views | s / call | s / view | finite |\n|---|---|---|---:|---:|---:|---|")
    for r in report["seconds"]:
        print(f"| {r['dtype']} | {r['vae']} | {r['quality']} | {r['views']} | {r['s_per_call']:.3f} | {r['s_per_view']:.3f} | {r['finite']} |")
    for k, v in report["eps_vs_fp32"].items():
        print(f"- eps {k} vs fp32: max abs {v['max_abs']:.3e}, relative RMS {v['rel_rms']:.3e}, finite {v['finite']}")
    for k, v in report.get("peak_vram_gib", {}).items():
        print(f"- peak VRAM 1 view, {v['dtype']}, {k}: {v['gib']:.2f} GiB ({v['s_per_view']:.2f} s)")
    for r in report["compile"]:
        print(f"- torch.compile {r['mode']} {r['dtype']}, {r['views']} view(s): first call {r['first_call_s']:.1f} s, "
              f"then {r['s_per_view_50']:.3f} s/view at 50 steps")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
