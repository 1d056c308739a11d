"""Training throughput and peak RAM of configs/small-from-scratch.yaml on this machine, with and
without the latent cache (issue 5 item 7). Each variant runs in its own subprocess (peak RSS is
per process); prints a markdown table.

    python benchmarks/train_speed.py [--steps 20] [--threads 2] [--objects 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _child(data: str, cache: bool, steps: int, threads: int, batch: int, out: str) -> None:
    import torch
    import yaml

    torch.set_num_threads(threads)
    from zero123.train.config import Config
    from zero123.train.loop import train

    d = yaml.safe_load((REPO / "configs" / "small-from-scratch.yaml").read_text())
    d["vae_stage"]["enabled"] = False  # speed of the diffusion stage only
    d["data"]["cache_latents"] = cache
    d["train"].update(max_steps=steps + 3, log_every=3, sample_every=0, checkpoint_every=10**6, batch_size=batch)
    rates = []
    res = train(data, Config.from_dict(d), Path(out) / "run", show_progress=False,
                log=lambda m: None)
    # the last interval excludes warm-up steps: log_every=3 -> the rate is over the final window
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rate": res.samples_per_second, "rss_mib": rss}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--objects", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--child", nargs=2)
    a = ap.parse_args()
    if a.child:
        _child(a.child[0], a.child[1] == "cache", a.steps, a.threads, a.batch, tempfile.mkdtemp())
        return
    sys.path.insert(0, str(REPO / "tests"))
    from test_train import make_views_release

    tmp = Path(tempfile.mkdtemp())
    data = make_views_release(tmp / "data", n_objects=a.objects, size=64)
    rows = []
    for mode in ("cache", "stream"):
        r = subprocess.run([sys.executable, __file__, "--steps", str(a.steps), "--threads", str(a.threads),
                            "--batch", str(a.batch), "--child", str(data), mode], capture_output=True, text=True, check=True)
        rows.append((mode, json.loads(r.stdout.strip().splitlines()[-1])))
    print(f"small-from-scratch diffusion stage, batch {a.batch}, 64 px, {a.threads} threads, {a.steps} timed steps\n")
    print("| latents | samples/s | peak RSS (MiB) |")
    print("|---|---|---|")
    for mode, r in rows:
        print(f"| {'cached' if mode == 'cache' else 'encoded every step'} | {r['rate']:.1f} | {r['rss_mib']:.0f} |")


if __name__ == "__main__":
    main()
