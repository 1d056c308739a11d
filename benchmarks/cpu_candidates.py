"""CPU speed candidates for one denoising step, each against today's U-Net call in the same process.

One guided step = one U-Net forward at batch 2 (unconditional + conditional branch) on random
weights of the chosen architecture. Candidates:

* ``attention: classic``: diffusers' ``AttnProcessor`` (explicit softmax(QK^T)V) instead of the
  default ``AttnProcessor2_0`` (``torch.nn.functional.scaled_dot_product_attention``, SDPA);
* ``channels-last``: the U-Net and its input in ``torch.channels_last`` memory format;
* ``threads 1`` vs ``threads 2`` (``torch.set_num_threads``);
* ``batch 1 (guidance 1)``: the conditional branch only, what the pipeline runs at guidance 1.0;
* ``int8 dynamic Linear``: ``torch.ao.quantization.quantize_dynamic`` on every ``nn.Linear``,
  with the eps difference to fp32 on the same input;
* ``torch.compile`` (inductor), on ``--compile-arch`` (compile time and per-forward gain).

Forwards of the candidates that share the model are interleaved (round robin, ``--repeats``
rounds after one warm-up each), so a change in the machine's load hits all of them alike. Each
row gives the median seconds per forward, the ratio to the baseline of its round and the output
difference to the baseline (max abs, and relative RMS ``||a - b|| / ||b||``).

    nice -n 19 python benchmarks/cpu_candidates.py --arch full --repeats 2
    python benchmarks/cpu_candidates.py --arch tiny --repeats 1 --compile-arch tiny   # smoke
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch


def unet_inputs(unet, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    c = unet.config
    side = c.sample_size
    x = torch.randn(batch, c.in_channels, side, side, generator=g)
    t = torch.full((batch,), 500, dtype=torch.long)
    ctx = torch.randn(batch, 1, c.cross_attention_dim, generator=g)
    return x, t, ctx


@torch.no_grad()
def forward(unet, inputs, channels_last: bool = False):
    x, t, ctx = inputs
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return unet(x, t, encoder_hidden_states=ctx, return_dict=False)[0]


def diff(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    a, b = a.float().contiguous(), b.float().contiguous()
    return float((a - b).abs().max()), float((a - b).norm() / b.norm())


def timed(fn) -> tuple[float, torch.Tensor]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="full", help="model factory preset: full (860M U-Net, 256 px), small, tiny")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile-arch", default="small", help="preset for the torch.compile row ('none' to skip)")
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args()
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    from zero123.models.factory import build_components

    torch.set_num_threads(args.threads)
    unet = build_components(args.arch, seed=0)["unet"].eval()
    n_params = sum(p.numel() for p in unet.parameters()) / 1e6
    two, one = unet_inputs(unet, 2), unet_inputs(unet, 1)
    print(f"{args.arch}: {n_params:.0f}M-parameter U-Net, latent {unet.config.sample_size}^2, load {os.getloadavg()[0]:.1f}", flush=True)

    # 1. Candidates that share the model (switched in place), interleaved
    def set_attn(proc):
        unet.set_attn_processor(proc())

    def set_layout(fmt):
        unet.to(memory_format=fmt)

    def run(name):
        if name == "attention: classic":
            set_attn(AttnProcessor)
        if name == "channels-last":
            set_layout(torch.channels_last)
        if name == "threads 1":
            torch.set_num_threads(1)
        try:
            return timed(lambda: forward(unet, one if name.startswith("batch 1") else two, name == "channels-last"))
        finally:
            set_attn(AttnProcessor2_0)
            set_layout(torch.contiguous_format)
            torch.set_num_threads(args.threads)

    names = ["baseline (SDPA, contiguous, batch 2)", "attention: classic", "channels-last", "threads 1", "batch 1 (guidance 1)"]
    if args.threads == 1:
        names.remove("threads 1")
    times: dict[str, list[float]] = {n: [] for n in names}
    ratios: dict[str, list[float]] = {n: [] for n in names}
    outs: dict[str, torch.Tensor] = {}
    for n in names:  # warm-up (oneDNN builds its primitives per shape and layout on first use)
        outs[n] = run(n)[1]
    for r in range(args.repeats):
        base = None
        for n in names:
            dt, _ = run(n)
            times[n].append(dt)
            base = dt if base is None else base
            ratios[n].append(dt / base)
        print(f"  round {r + 1}: " + ", ".join(f"{n.split(' (')[0]} {times[n][-1]:.2f}s" for n in names), flush=True)
    rows = []
    for n in names:
        ref = outs[names[0]] if not n.startswith("batch 1") else outs[names[0]][1:]
        got = outs[n]
        mx, rel = diff(got, ref) if not n.startswith("batch 1") else (float("nan"), float("nan"))
        rows.append((n, statistics.median(times[n]), statistics.median(ratios[n]), mx, rel, ""))

    # 2. int8 dynamic quantisation of Linear (a quantised copy; baseline re-timed beside it)
    if not args.no_int8:
        q = torch.ao.quantization.quantize_dynamic(copy.deepcopy(unet), {torch.nn.Linear}, dtype=torch.qint8)
        out_q = forward(q, two)
        tq, tb = [], []
        for _ in range(args.repeats):
            tb.append(timed(lambda: forward(unet, two))[0])
            tq.append(timed(lambda: forward(q, two))[0])
        mx, rel = diff(out_q, outs[names[0]])
        rows.append(("int8 dynamic Linear", statistics.median(tq), statistics.median([a / b for a, b in zip(tq, tb)]), mx, rel,
                     f"baseline beside it {statistics.median(tb):.2f}s"))
        del q

    # 3. torch.compile (inductor) on --compile-arch: compile time, then per-forward gain
    if args.compile_arch != "none":
        cu = build_components(args.compile_arch, seed=0)["unet"].eval() if args.compile_arch != args.arch else unet
        cin = unet_inputs(cu, 2)
        ref = forward(cu, cin)
        forward(cu, cin)
        compiled = torch.compile(cu)
        t_compile, out_c = timed(lambda: forward(compiled, cin))
        tc, tb = [], []
        for _ in range(max(3, args.repeats)):
            tb.append(timed(lambda: forward(cu, cin))[0])
            tc.append(timed(lambda: forward(compiled, cin))[0])
        mx, rel = diff(out_c, ref)
        gain = statistics.median(tb) - statistics.median(tc)
        pays = f"pays off after {t_compile / gain:.0f} forwards" if gain > 0 else "never pays off"
        rows.append((f"torch.compile ({args.compile_arch} U-Net)", statistics.median(tc), statistics.median([a / b for a, b in zip(tc, tb)]),
                     mx, rel, f"first call (compile) {t_compile:.1f}s; eager {statistics.median(tb):.3f}s; {pays}"))

    print(f"\n### one U-Net forward, {args.arch} architecture ({n_params:.0f}M), random weights, CPU fp32, "
          f"{args.threads} threads, median of {args.repeats}; load average at the end {os.getloadavg()[0]:.1f}\n")
    print("| candidate | s / forward | vs baseline | max abs diff | relative RMS diff | note |")
    print("|---|---:|---:|---:|---:|---|")
    for n, t, ratio, mx, rel, note in rows:
        print(f"| {n} | {t:.3f} | {ratio:.2f}x | {mx:.2e} | {rel:.2e} | {note} |")


if __name__ == "__main__":
    main()
