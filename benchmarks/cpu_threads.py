"""CPU threads on a busy machine: the README quickstart under torch's default threading vs ours.

Each configuration runs the quickstart (`zero123 nvs example.png --azimuth 90,180,270`: load the
bundled model, preprocess, sample 3 views at 50 steps, write the PNGs) in a fresh process and the
wall time of the whole process is measured, repeats interleaved so that changes in the machine's
load hit every configuration alike:

* ``torch default``: one OpenMP thread per core, libgomp's default wait policy (what the
  quickstart did before `--threads`);
* ``1 thread``: one thread, default wait policy;
* ``cores, passive``: one thread per core, ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep);
* ``zero123 default``: what the CLI does now without ``--threads``: ``OMP_WAIT_POLICY=PASSIVE``
  and as many threads as the 1-minute load average says are free (at least 1).

``--busy K`` starts K extra busy-loop processes (one spinning core each) for the duration, to make
an idle machine as shared as the development machine usually is.

    python benchmarks/cpu_threads.py --repeats 3 --busy 1
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from zero123.assets import EXAMPLE_IMAGE
    from zero123.cli._common import run_cli_errors
    from zero123.cli.nvs import nvs
    threads = None if sys.argv[2] == "default" else int(sys.argv[2])
    run_cli_errors(nvs)(image=EXAMPLE_IMAGE, azimuth="90,180,270", out=Path(sys.argv[1]), threads=threads)
    import torch
    print("threads used:", torch.get_num_threads(), file=sys.stderr)
""")


def _spin() -> None:
    while True:
        pass


def run_once(threads: str, passive: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")}
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", CHILD, out, threads], env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--busy", type=int, default=0, help="extra busy-loop processes during the runs")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    configs = {
        "torch default": (str(cores), False),
        "1 thread": ("1", False),
        f"{cores} threads, passive": (str(cores), True),
        "zero123 default": ("default", True),
    }
    spinners = [mp.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    times: dict[str, list[float]] = {name: [] for name in configs}
    loads = []
    try:
        for _ in range(args.repeats):
            for name, (threads, passive) in configs.items():
                loads.append(os.getloadavg()[0])
                times[name].append(run_once(threads, passive))
                print(f"{name}: {times[name][-1]:.1f} s (load {loads[-1]:.2f})", file=sys.stderr)
    finally:
        for p in spinners:
            p.terminate()
    print(f"{cores} cores, {args.busy} extra busy-loop processes, 1-minute load average during the runs "
          f"{min(loads):.1f}-{max(loads):.1f}, {args.repeats} interleaved repeats\n")
    print("| configuration | median s | runs (s) |")
    print("|---|---:|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.1f} | {', '.join(f'{t:.1f}' for t in ts)} |")


if __name__ == "__main__":
    main()
