"""Held-out quality against training steps: export each checkpoint of a run and score it with
``zero123 eval nvs`` (identity baseline beside it) on one or more held-out sets.

    python scripts/eval_checkpoints.py --run runs/ft-objects \
        --data objects=data/test64o --data primitives=data/test64s --init bundled --watch --until 02:35

For every checkpoint ``step-N`` of the run (and, with ``--init MODEL``, the model it started from
as step 0) that is not scored yet:

1. ``zero123 export RUN -o RUN/exports/step-N --step N`` (EMA U-Net, as shipped);
2. ``zero123 eval nvs --data SET --model EXPORT --resolution R --steps S -o RUN/curve-sS/SET/step-N``
   for each ``--data NAME=PATH`` (held-out sets from ``zero123 eval render-testset``, whose
   targets the command reads);
3. the summary (PSNR, SSIM, mask IoU of the model and of identity, and the margins) is appended to
   ``RUN/curve-sS/curve.json`` and written as ``curve.csv`` and ``curve.md`` (one folder per DDIM
   step count S, so a cheap curve at S = 20 and the final numbers at S = 50 never mix).

``--watch`` keeps polling for new checkpoints until ``--until HH:MM`` (UTC) or a file
``RUN/curve-sS/STOP`` appears. Run it under ``nice -n 19`` beside a training run; give it
``--threads`` so it takes a bounded share of the CPU. Every command it runs is printed.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

STEP_RE = re.compile(r"^step-(\d+)$")
COLUMNS = ("step", "set", "objects", "psnr", "ssim", "mask_iou", "identity_psnr", "identity_ssim",
           "identity_mask_iou", "margin_psnr", "margin_ssim", "margin_mask_iou")


def _cli(*args: str, threads: int) -> None:
    cmd = [sys.executable, "-m", "zero123.cli", *args]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


def _checkpoint_steps(run: Path) -> list[int]:
    root = run / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if p.is_dir() and (m := STEP_RE.match(p.name)))


def _row(step: int, name: str, summary: dict) -> dict:
    model, ident, margin = summary["model"], summary["identity"], summary["margin_over_identity"]
    return {"step": step, "set": name, "objects": model["objects"],
            "psnr": model["psnr"], "ssim": model["ssim"], "mask_iou": model["mask_iou"],
            "identity_psnr": ident["psnr"], "identity_ssim": ident["ssim"], "identity_mask_iou": ident["mask_iou"],
            "margin_psnr": margin["psnr"], "margin_ssim": margin["ssim"], "margin_mask_iou": margin["mask_iou"]}


def _write_tables(curve_dir: Path, rows: list[dict]) -> None:
    rows = sorted(rows, key=lambda r: (r["set"], r["step"]))
    (curve_dir / "curve.json").write_text(json.dumps(rows, indent=1) + "\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    (curve_dir / "curve.csv").write_text(buf.getvalue())
    lines = ["| set | step | PSNR | SSIM | mask IoU | identity PSNR / SSIM / mask IoU | margin PSNR / SSIM / mask IoU |",
             "|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['step']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['mask_iou']:.3f} | "
                     f"{r['identity_psnr']:.2f} / {r['identity_ssim']:.3f} / {r['identity_mask_iou']:.3f} | "
                     f"{r['margin_psnr']:+.2f} / {r['margin_ssim']:+.3f} / {r['margin_mask_iou']:+.3f} |")
    (curve_dir / "curve.md").write_text("\n".join(lines) + "\n")


def score(run: Path, step: int, model: str | None, sets: dict[str, Path], args, rows: list[dict]) -> None:
    """Export checkpoint ``step`` (or use ``model`` as is) and score it on every set."""
    curve_dir = run / f"curve-s{args.steps}"
    # 1. the model folder: an export of the checkpoint (EMA weights, as shipped)
    if model is None:
        export = run / "exports" / f"step-{step:07d}"
        if not export.is_dir():
            _cli("export", str(run), "-o", str(export), "--step", str(step), threads=args.threads)
        model = str(export)
    # 2. each held-out set through `zero123 eval nvs`
    for name, data in sets.items():
        if any(r["step"] == step and r["set"] == name for r in rows):
            continue
        out = curve_dir / name / f"step-{step:07d}"
        if not (out / "results.json").is_file():
            _cli("eval", "nvs", "--data", str(data), "--model", model, "--resolution", str(args.resolution),
                 "--steps", str(args.steps), "--device", "cpu", "--no-progress", "--no-lpips", "-o", str(out),
                 *(["--limit", str(args.limit)] if args.limit else []), threads=args.threads)
        rows.append(_row(step, name, json.loads((out / "results.json").read_text())["summary"]))
        # 3. the tables, after every set so a stopped run keeps what it measured
        _write_tables(curve_dir, rows)
        r = rows[-1]
        print(f"step {step} {name}: PSNR {r['psnr']:.2f} (identity {r['identity_psnr']:.2f}), SSIM {r['ssim']:.3f} "
              f"({r['identity_ssim']:.3f}), mask IoU {r['mask_iou']:.3f} ({r['identity_mask_iou']:.3f})", flush=True)


def _past(until: str | None) -> bool:
    if until is None:
        return False
    h, m = (int(x) for x in until.split(":"))
    now = dt.datetime.now(dt.timezone.utc)
    return (now.hour, now.minute) >= (h, m)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="run folder of `zero123 train`")
    ap.add_argument("--data", action="append", required=True, help="NAME=PATH of a held-out set (repeatable)")
    ap.add_argument("--init", default=None, help="also score this model as step 0 (the run's starting weights)")
    ap.add_argument("--steps", type=int, default=50, help="DDIM steps of eval nvs (50: the model card's)")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--limit", type=int, default=None, help="score only the first N objects of each set")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", type=int, default=1, help="score every k-th checkpoint (the latest always)")
    ap.add_argument("--watch", action="store_true", help="keep polling for new checkpoints")
    ap.add_argument("--until", default=None, help="with --watch: stop at this UTC time, HH:MM")
    args = ap.parse_args(argv)

    sets = {}
    for item in args.data:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path).is_dir():
            ap.error(f"--data must be NAME=PATH of an existing folder, got {item!r}")
        sets[name] = Path(path)
    if not args.run.is_dir():
        ap.error(f"--run: no such run folder {str(args.run)!r}")
    curve_dir = args.run / f"curve-s{args.steps}"
    curve_dir.mkdir(exist_ok=True)
    rows = json.loads((curve_dir / "curve.json").read_text()) if (curve_dir / "curve.json").is_file() else []

    if args.init is not None:
        score(args.run, 0, args.init, sets, args, rows)
    while True:
        steps = _checkpoint_steps(args.run)
        todo = [s for i, s in enumerate(steps) if (i % args.every == 0 or s == steps[-1])
                and not all(any(r["step"] == s and r["set"] == n for r in rows) for n in sets)]
        # the newest first: a checkpoint may be rotated away (keep_last) before an old one is reached
        for s in reversed(todo):
            if (args.run / "checkpoints" / f"step-{s:07d}").is_dir():
                score(args.run, s, None, sets, args, rows)
        if not args.watch or _past(args.until) or (curve_dir / "STOP").exists():
            return 0
        time.sleep(60)


if __name__ == "__main__":
    raise SystemExit(main())
