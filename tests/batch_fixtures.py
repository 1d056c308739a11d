"""A small batch job for tests/test_batch*.py: images, a manifest with good and bad rows, the
reference outputs of a local run, and helpers to compare job folders byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

#: Rows that must succeed: several views, one view, a radius change, a default id (the file stem).
GOOD_ROWS = [
    {"id": "r0", "image": "img/a.png", "cameras": [{"azimuth": 90, "elevation": 0}, {"azimuth": 180}, {"azimuth": -30, "elevation": 20}], "seed": 1},
    {"id": "r1", "image": "img/b.png", "cameras": [{"azimuth": 30, "elevation": 10, "radius": 1.2}], "seed": 5},
    {"image": "img/c.png", "cameras": [{"azimuth": 45}, {"azimuth": 135}], "seed": 7, "meta": {"source": "test"}},
    {"id": "r3", "image": "img/a.png", "cameras": [{"azimuth": 270}], "seed": 11},
]
GOOD_IDS = ["r0", "r1", "c", "r3"]

#: Rows that must fail, with a piece of their message.
BAD_ROWS = [
    ({"id": "missing", "image": "img/nope.png", "cameras": [{"azimuth": 10}]}, "no such file"),
    ({"id": "unreadable", "image": "img/not_an_image.png", "cameras": [{"azimuth": 10}]}, "not an image"),
    ({"id": "badcam", "image": "img/a.png", "cameras": [{"azimut": 10}]}, "unknown key"),
    ({"id": "nancam", "image": "img/a.png", "cameras": [{"azimuth": "x"}]}, "finite number"),
    ({"id": "r1", "image": "img/b.png", "cameras": [{"azimuth": 10}]}, "duplicate id"),
]

STEPS = 2


def write_images(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:64, :64]
    for k, name in enumerate("abc"):
        rgba = np.zeros((64, 64, 4), np.uint8)
        rgba[..., 0] = 60 + 70 * k
        rgba[..., 1] = (xx * 4).astype(np.uint8)
        rgba[..., 2] = (yy * 4).astype(np.uint8)
        rgba[..., 3] = np.where((yy - 30) ** 2 + (xx - 28 - 3 * k) ** 2 < (16 + 2 * k) ** 2, 255, 0)
        Image.fromarray(rgba, "RGBA").save(folder / f"{name}.png")
    (folder / "not_an_image.png").write_text("this is text")


def write_manifest(path: Path, rows: list[dict], *, extra_lines: tuple[str, ...] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


def make_job(root: Path, *, bad: bool = True) -> Path:
    """``root/img/*.png`` and ``root/manifest.jsonl`` (good rows, then bad ones and a non-JSON line)."""
    write_images(root / "img")
    rows = GOOD_ROWS + ([r for r, _ in BAD_ROWS] if bad else [])
    return write_manifest(root / "manifest.jsonl", rows, extra_lines=("{not json",) if bad else ())


def output_files(out: Path) -> dict[str, bytes]:
    """Every image a job wrote, ``"<id>/<name>" -> bytes`` (``row.json`` and results excluded)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/*.png"))}


def result_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def comparable(lines: list[dict]) -> list[dict]:
    """Result lines without what depends on the run (timing, where it ran)."""
    drop = {"seconds", "finished_at", "device"}
    return [{k: v for k, v in line.items() if k not in drop} for line in lines]


def nvs_task(model_dir, **sampling):
    from zero123.batch import NvsTask
    from zero123.nvs import SamplingSettings

    return NvsTask(model=str(model_dir), sampling=SamplingSettings(steps=STEPS, **sampling))


def local_backend():
    from zero123.batch import LocalBackend

    return LocalBackend(device="cpu", threads=1)


def reference_run(root: Path, model_dir):
    """One uninterrupted local run of the test manifest: ``(manifest, out, summary)``."""
    from zero123.batch import load_rows, run_batch

    manifest = make_job(root)
    out = root / "out"
    return manifest, out, run_batch(load_rows(manifest), out, nvs_task(model_dir), local_backend())
