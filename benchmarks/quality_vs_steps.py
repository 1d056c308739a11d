"""Held-out quality against solver and step count, with ``zero123 eval nvs`` (the one evaluation path).

Each configuration runs ``zero123 eval nvs`` in its own process on the same held-out folder, for
every seed, and the table reports the mean over seeds of each method's summary (PSNR, SSIM and any
other metric the harness writes, e.g. mask IoU), the seed-to-seed spread of the DDIM-50 baseline
and each configuration's paired per-object difference to it.

    # held-out set: procedural objects of the bundled model's training kind, a seed not used for training
    zero123 eval render-testset -o /tmp/held777 --count 24 --size 64 --seed 777 --backend gl \\
        --min-parts 2 --max-parts 4 --texture-probability 0.25
    nice -n 19 python benchmarks/quality_vs_steps.py --data /tmp/held777 --out /tmp/qvs   # add --reuse to resume
    python benchmarks/quality_vs_steps.py --data D --out O --configs ddim:5,dpm++:4 --baseline-seeds 0 --limit 2   # smoke

Prints a markdown table (and writes it to ``OUT/table.md``; per-run reports stay in ``OUT/<config>-s<seed>``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_CONFIGS = "ddim:50,euler-a:10,euler-a:15,euler-a:20,ddim:10,ddim:15,ddim:20,dpm++:10,dpm++:15,dpm++:20,unipc:10,unipc:15"
SKIP = {"objects", "views", "seconds_per_object"}


def run_eval(data: Path, out: Path, model: str, solver: str, steps: int, seed: int, limit: int | None, threads: int,
             reuse: bool = False) -> dict:
    """One ``zero123 eval nvs`` run (fresh process); returns its results.json and wall seconds.
    With ``reuse``, a finished run already in ``out`` (results.json is written last) is read instead."""
    if reuse and (out / "results.json").is_file():
        report = json.loads((out / "results.json").read_text())
        report["wall_s"] = float("nan")
        return report
    quality = ["--quality", "original"] if solver == "ddim" else ["--quality", "fast"]
    cmd = [sys.executable, "-m", "zero123.cli", "eval", "nvs", "--data", str(data), "--model", model, "-o", str(out),
           *quality, "--solver", solver, "--steps", str(steps), "--seed", str(seed), "--resolution", "64",
           "--no-lpips", "--no-progress", "--device", "cpu", "--threads", str(threads)]
    if limit:
        cmd += ["--limit", str(limit)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    report = json.loads((out / "results.json").read_text())
    report["wall_s"] = time.perf_counter() - t
    return report


def per_object(report: dict, metric: str, method: str = "model") -> np.ndarray:
    """``(objects,)`` the model's per-object mean of ``metric``, in object order."""
    vals = []
    for obj in report["objects"]:
        scores = [v["scores"][method][metric] for v in obj["views"] if v["scores"][method].get(metric) is not None]
        vals.append(float(np.mean([float(s) for s in scores])))
    return np.asarray(vals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="solver:steps,... (the first is the baseline)")
    parser.add_argument("--seeds", default="0", help="seeds of every configuration")
    parser.add_argument("--baseline-seeds", default="0,1", help="seeds of the baseline (the first configuration): its spread")
    parser.add_argument("--reuse", action="store_true", help="read runs already finished in --out instead of rerunning them")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    base_seeds = [int(s) for s in args.baseline_seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. Every configuration x seed, each in its own process
    reports: dict[tuple[str, int], list[dict]] = {}
    for k, (solver, steps) in enumerate(configs):
        for seed in base_seeds if k == 0 else seeds:
            rep = run_eval(args.data, args.out / f"{solver}-{steps}-s{seed}", args.model, solver, steps, seed, args.limit,
                           args.threads, args.reuse)
            reports.setdefault((solver, steps), []).append(rep)
            s = rep["summary"]["model"]
            print(f"{solver} {steps} seed {seed}: PSNR {s['psnr']:.3f} SSIM {s['ssim']:.4f} ({rep['wall_s']:.0f} s)", flush=True)

    # 2. Metrics the harness wrote (PSNR, SSIM, and mask IoU etc. when it has them)
    first = reports[configs[0]][0]["summary"]["model"]
    metrics = [m for m, v in first.items() if m not in SKIP and isinstance(v, (int, float))]
    base = reports[configs[0]]
    base_obj = {m: np.mean([per_object(r, m) for r in base], axis=0) for m in metrics}

    # 3. Table: mean over seeds; spread = max - min over seeds; paired difference to the baseline
    first_identity = reports[configs[0]][0]["summary"]["identity"]
    head = "| solver | steps | U-Net evaluations / view | seeds | " + " | ".join(f"{m} (mean over seeds)" for m in metrics)
    head += " | " + " | ".join(f"{m} seed spread" for m in metrics) + " | " + " | ".join(f"d{m} vs baseline (paired SE)" for m in metrics)
    head += " | s / object |"
    lines = [head, "|" + "---|" * (5 + 3 * len(metrics))]
    for (solver, steps), reps in reports.items():
        vals = {m: [r["summary"]["model"][m] for r in reps] for m in metrics}
        calls = (steps - 1 if solver == "ddim" else steps) * 2
        row = f"| {solver} | {steps} | {calls} | {len(reps)} | " + " | ".join(f"{np.mean(vals[m]):.4f}" for m in metrics)
        row += " | " + " | ".join(f"{max(vals[m]) - min(vals[m]):.4f}" if len(reps) > 1 else "-" for m in metrics)
        diffs = []
        for m in metrics:
            d = np.mean([per_object(r, m) for r in reps], axis=0) - base_obj[m]
            diffs.append(f"{d.mean():+.4f} ({d.std(ddof=1) / np.sqrt(len(d)):.4f})")
        row += " | " + " | ".join(diffs)
        row += f" | {np.mean([r['summary']['model']['seconds_per_object'] for r in reps]):.2f} |"
        lines.append(row)
    lines.append("| identity (input view) | - | 0 | - | " + " | ".join(f"{first_identity[m]:.4f}" for m in metrics)
                 + " |" * (2 * len(metrics)) + " | |")
    table = "\n".join(lines)
    objects = base[0]["summary"]["model"]["objects"]
    header = (f"{objects} held-out objects x {len(base[0]['objects'][0]['views'])} targets, model {args.model}, "
              f"baseline seeds {base_seeds}, other seeds {seeds}, "
              f"load average at the end {os.getloadavg()[0]:.1f}")
    print("\n" + header + "\n\n" + table)
    (args.out / "table.md").write_text(header + "\n\n" + table + "\n")


if __name__ == "__main__":
    main()
