"""Evaluation time per object: the identity baseline (data loading + metrics only) side by side
with a random model run through ``zero123.eval.evaluate`` in the same process.

    python benchmarks/eval_speed.py [--objects 3] [--size 256] [--preset tiny|full] [--steps 10 50] [--device cpu]

Data: a held-out test set rendered with ``render_relative_testset`` (view 0 + 5 camera changes),
scored at the 256 px protocol resolution. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--size", type=int, default=256, help="rendered and protocol resolution")
    ap.add_argument("--preset", default="tiny", choices=["tiny", "full"])
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from zero123.eval import EvalProtocol, PipelinePredictor, ViewsFolder, evaluate, ssim, psnr
    from zero123.eval.testset import DEFAULT_CHANGES, render_relative_testset
    from zero123.models.factory import build_components
    from zero123.pipeline import Zero123Pipeline

    tmp = Path(tempfile.mkdtemp(prefix="eval_speed_"))
    t0 = time.perf_counter()
    render_relative_testset(tmp / "data", args.objects, image_size=args.size, progress=False)
    render_s = time.perf_counter() - t0
    views = ViewsFolder(tmp / "data", "all")
    proto = EvalProtocol(split="all", targets=DEFAULT_CHANGES, resolution=args.size)
    n_views = len(DEFAULT_CHANGES)

    # metric cost alone, per view
    rng = np.random.default_rng(0)
    a, b = rng.random((args.size, args.size, 3)), rng.random((args.size, args.size, 3))
    t0 = time.perf_counter()
    for _ in range(10):
        psnr(a, b)
    psnr_ms = (time.perf_counter() - t0) / 10 * 1e3
    t0 = time.perf_counter()
    for _ in range(10):
        ssim(a, b)
    ssim_ms = (time.perf_counter() - t0) / 10 * 1e3

    rows = []
    rep = evaluate(views, proto, None, tmp / "out_id", progress=False)
    rows.append(("identity (load + PSNR/SSIM + report)", "-", rep.wall_seconds / args.objects, rep.summary["identity"]))

    pipe = Zero123Pipeline(**build_components(args.preset, seed=0)).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    for steps in args.steps:
        pred = PipelinePredictor(pipe, num_inference_steps=steps, name=f"{args.preset}-random")
        evaluate(views, proto, pred, None, limit=1, lpips=False, progress=False)  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        rep = evaluate(views, proto, pred, tmp / f"out_{steps}", lpips=False, progress=False)
        s = rep.summary[pred.name]
        rows.append((f"{args.preset} random model, S={steps} (+ identity)", steps, rep.wall_seconds / args.objects, s))

    dev = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"CPU, {args.threads} thread(s)"
    print(f"\n{args.objects} objects x {n_views} targets, {args.size} px, device {dev}; "
          f"test-set render {render_s:.1f} s; PSNR {psnr_ms:.2f} ms/view, SSIM {ssim_ms:.1f} ms/view\n")
    print("| method | steps | s / object (5 targets) | model s / object |")
    print("|---|---|---|---|")
    for name, steps, per_obj, s in rows:
        print(f"| {name} | {steps} | {per_obj:.3f} | {s['seconds_per_object']:.3f} |")


if __name__ == "__main__":
    main()
