"""Load time and peak RSS of a full-size original-layout checkpoint (synthetic random weights).

Writes once a Lightning-style ``.ckpt`` with the complete key set of a real zero123 file
(EMA + raw U-Net, VAE, CLIP ViT-L/14 incl. text leftovers, cc_projection, buffers) in float16,
then, each in a fresh subprocess, measures:

* baseline: ``torch.load(weights_only=True)`` of the whole file without mmap (what naive loaders do);
* ours: ``zero123.checkpoints.load_components`` to float16 and to float32.

Peak RSS is the child's ``VmHWM`` (Linux). Prints a markdown table.

    python benchmarks/checkpoint_load.py [--path /tmp/zero123_bench/full_fp16.ckpt]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(1)
path, mode = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if mode == "baseline":
    sd = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    n_bytes = sum(v.numel() * v.element_size() for v in sd.values())
else:
    from zero123.checkpoints import load_components
    dtype = {"fp16": torch.float16, "fp32": torch.float32}[mode]
    loaded = load_components(path, torch_dtype=dtype)
    mods = [loaded.components[k] for k in ("unet", "vae", "image_encoder", "cc_projection")]
    n_bytes = sum(p.numel() * p.element_size() for m in mods for p in m.parameters())
    s = sum(float(p.float().sum()) for p in mods[0].parameters())  # touch every U-Net weight
dt = time.perf_counter() - t0
# VmHWM: this process's own peak (ru_maxrss would carry over the parent's peak across fork+exec)
hwm = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
print(json.dumps({"seconds": dt, "peak_rss": hwm, "bytes": n_bytes}))
"""


def write_checkpoint(path: Path) -> None:
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from checkpoint_fixtures import original_state_dict  # the test-suite's LDM-layout writer

    from zero123.models.factory import build_components

    with torch.device("meta"):
        full = build_components("full", seed=None)
    meta = original_state_dict(full)
    gen = torch.Generator().manual_seed(0)
    sd = {}
    for k, v in meta.items():
        t = torch.empty(v.shape, dtype=torch.float16 if v.is_floating_point() else v.dtype)
        if t.is_floating_point():
            t.normal_(0, 0.02, generator=gen)
        else:
            t.zero_()
        sd[k] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": sd, "global_step": 105000}, path)


def run(path: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", type=Path, default=Path("/tmp/zero123_bench/full_fp16.ckpt"))
    args = ap.parse_args()
    if not args.path.exists():
        t0 = time.perf_counter()
        write_checkpoint(args.path)
        print(f"wrote {args.path} in {time.perf_counter() - t0:.0f} s")
    size = args.path.stat().st_size
    gb = 1e9
    rows = []
    for mode, label in [("baseline", "torch.load(weights_only=True), no mmap"), ("fp16", "load_components -> float16"),
                        ("fp32", "load_components -> float32")]:
        r = run(args.path, mode)
        rows.append((label, r["seconds"], r["peak_rss"] / gb, r["bytes"] / gb, r["peak_rss"] / r["bytes"]))
    print(f"\nfile: {args.path} ({size / gb:.2f} GB, float16, EMA + raw U-Net)\n")
    print("| method | load time (s) | peak RSS (GB) | loaded weights (GB) | peak RSS / weights |")
    print("|---|---:|---:|---:|---:|")
    for label, s, rss, w, ratio in rows:
        print(f"| {label} | {s:.1f} | {rss:.2f} | {w:.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
