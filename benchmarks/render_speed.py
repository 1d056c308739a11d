"""Rendering throughput: images/s at 256 px (12 views per object) per backend and worker count.

Runs the real writer (`zero123.data.writer.render_dataset`: procedural object, render, PNG + npy
writes, manifest) into temporary folders and prints a markdown table.

    python benchmarks/render_speed.py [--objects 200] [--torch-objects 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from zero123.data.writer import RenderSettings, procedural_jobs, render_dataset
from zero123.render.gl_backend import gl_available


def run(backend: str, workers: int, objects: int, size: int) -> tuple[float, float]:
    settings = RenderSettings(num_views=12, image_size=size, backend=backend)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        report = render_dataset(d, procedural_jobs(objects, seed=0), settings, seed=0, workers=workers, progress=False)
        seconds = time.perf_counter() - t0  # includes worker start-up
    assert len(report.rendered) == objects, report.failed
    return objects * 12 / seconds, objects / seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=200)
    ap.add_argument("--torch-objects", type=int, default=4)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    rows = []
    configs = [("torch", 1, args.torch_objects)]
    if gl_available():
        configs += [("gl", 1, args.objects), ("gl", 2, args.objects)]
    for backend, workers, n in configs:
        ips, ops = run(backend, workers, n, args.size)
        rows.append((backend, workers, n, ips, ops))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; size {args.size} px, 12 views/object\n")
    print("| backend | workers | objects | images/s | objects/s | 1000 objects x 12 views |")
    print("|---|---|---|---|---|---|")
    for backend, workers, n, ips, ops in rows:
        print(f"| {backend} | {workers} | {n} | {ips:.1f} | {ops:.2f} | {1000 / ops / 60:.1f} min |")


if __name__ == "__main__":
    main()
