#!/usr/bin/env bash
# The whole GPU measurement (docs/benchmarks.md, "GPU"): a few minutes on one H100/H200.
#   bash benchmarks/gpu_check.sh            # figures -> ${OUT:-gpu_check}/gpu_check.json and .md
#   bash benchmarks/gpu_check.sh --smoke    # CPU, tiny architecture: checks the script runs (seconds)
# Run from the repository root with the project's environment (PYTHONPATH=src if not installed).
set -euo pipefail
out="${OUT:-gpu_check}"
mkdir -p "$out"
export PYTHONPATH="${PYTHONPATH:-$PWD/src}"
py="${PYTHON:-python}"
if [[ "${1:-}" == "--smoke" ]]; then
    exec "$py" benchmarks/gpu_check.py --arch tiny --device cpu --dtypes bf16,fp32 --views 1,2 --compile none \
        --out "$out/gpu_check_smoke.json"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/nvidia_smi.txt"
# 1.-4. dtypes, presets, 1 and 8 views, offload VRAM, eps vs fp32, torch.compile (default and CUDA graphs)
timeout 540 "$py" benchmarks/gpu_check.py --arch full --device cuda --dtypes fp16,bf16,fp32 --views 1,8 \
    --compile default,reduce-overhead --out "$out/gpu_check.json" | tee "$out/gpu_check.md"
