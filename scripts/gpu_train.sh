#!/usr/bin/env bash
# Render the object-like training set, fine-tune the bundled model and score it, all on one lent
# GPU machine (docs/bundled_model.md, "Training on a lent GPU"). Self-contained: it needs only this
# working tree, the wheels in .whl/ and (for OpenGL rendering through EGL) the libraries in .gl/.
#
#   bash scripts/gpu_train.sh prepare     # HERE, once: fetch .whl/ (diffusers, trimesh, moderngl,
#                                         # glcontext, importlib_metadata) and .gl/ (EGL/GL .debs)
#   bash scripts/gpu_train.sh             # THERE: run(command="bash scripts/gpu_train.sh",
#                                         #            carry=[".whl", ".gl"], timeout_s=600)
#
# Steps (each prints its wall time): 1. libraries and wheels; 2. render N_OBJECTS training objects
# and the two held-out sets (objects kind, seed 777; primitives kind, seed 0: the model card's);
# 3. train for TRAIN_SECONDS (SIGTERM then writes a checkpoint); 4. export the EMA weights and store
# them in float16; 5. `zero123 eval nvs` of the bundled model and of the new one on both held-out
# sets; 6. copy the results and the model (a tar in 15 MiB parts) to $OUT.
#
# Knobs (environment): N_OBJECTS (6000), SIZE (64), TRAIN_SECONDS (330), CONFIG
# (configs/gpu-finetune-objects.yaml), MAX_STEPS / BATCH_SIZE / CHECKPOINT_EVERY (override the
# config), DEVICE (cuda), WORKERS (CPU count), TEST_COUNT (30), EVAL_STEPS (50), BACKEND (auto),
# WORK (/tmp/z123gpu), OUT ($OUT, else ./gpu_out), PYTHON (python3).
# A CPU smoke test of the whole path (minutes):
#   N_OBJECTS=6 TEST_COUNT=2 MAX_STEPS=2 BATCH_SIZE=4 EVAL_STEPS=2 DEVICE=cpu BACKEND=gl \
#     PYTHON=/work/main/.venv/bin/python bash scripts/gpu_train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [[ "${1:-}" == "prepare" ]]; then
    # wheels for the machine's Python 3.12 (x86-64); versions as tested here
    PIP="${PIP:-/work/main/.venv/bin/python -m pip}"
    mkdir -p .whl .gl
    $PIP download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d .whl diffusers==0.42.1 trimesh==5.2.0 moderngl==5.13.0 glcontext==3.1.0 \
        importlib_metadata==8.7.0
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    mkdir -p /tmp/amd64/partial
    # shellcheck disable=SC2086
    apt-get $o update -qq && (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
    du -sh .whl .gl
    exit 0
fi

N_OBJECTS=${N_OBJECTS:-6000}
SIZE=${SIZE:-64}
TRAIN_SECONDS=${TRAIN_SECONDS:-330}
CONFIG=${CONFIG:-configs/gpu-finetune-objects.yaml}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-$(nproc)}
TEST_COUNT=${TEST_COUNT:-30}
EVAL_STEPS=${EVAL_STEPS:-50}
BACKEND=${BACKEND:-auto}
WORK=${WORK:-/tmp/z123gpu}
OUT=${OUT:-$ROOT/gpu_out}
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$WORK" "$OUT"
LOG="$OUT/gpu_train.log"
exec > >(tee -a "$LOG") 2>&1
t0=$(date +%s)
step() { echo "== [$(( $(date +%s) - t0 )) s] $*"; }

# 1. libraries (EGL for the gl renderer) and wheels, when they travelled
step "1. environment"
if compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    export __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}
fi
if compgen -G ".whl/*.whl" >/dev/null && ! $PYTHON -c "import diffusers, trimesh, moderngl" 2>/dev/null; then
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
Z="$PYTHON -m zero123.cli"
$PYTHON - <<'EOF'
import torch, diffusers, zero123
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
print("diffusers", diffusers.__version__)
from zero123.render.gl_backend import gl_available
print("gl renderer (EGL):", gl_available())
EOF

# 2. data: the training set and the two held-out sets
step "2. render $N_OBJECTS training objects ($SIZE px, backend $BACKEND, $WORKERS workers)"
$Z render-dataset --procedural "$N_OBJECTS" --kind objects --out "$WORK/train" --size "$SIZE" --views 12 --seed 0 \
    --backend "$BACKEND" --workers "$WORKERS" --texture-probability 0.5 --elevation-min -35 --elevation-max 65 --no-progress
$Z eval render-testset -o "$WORK/test_objects" --count "$TEST_COUNT" --size "$SIZE" --seed 777 --backend "$BACKEND" \
    --kind objects --texture-probability 0.5 --no-progress
$Z eval render-testset -o "$WORK/test_primitives" --count "$TEST_COUNT" --size "$SIZE" --seed 0 --backend "$BACKEND" \
    --min-parts 2 --max-parts 4 --texture-probability 0.25 --no-progress

# 3. train for TRAIN_SECONDS (the trainer checkpoints on SIGTERM; exit 130 = interrupted, expected)
step "3. train ($CONFIG) for at most $TRAIN_SECONDS s"
$PYTHON - "$CONFIG" "$WORK/config.yaml" <<'EOF'
import os, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
for env, key in (("MAX_STEPS", "max_steps"), ("BATCH_SIZE", "batch_size"), ("CHECKPOINT_EVERY", "checkpoint_every")):
    if os.environ.get(env):
        cfg["train"][key] = int(os.environ[env])
yaml.safe_dump(cfg, open(sys.argv[2], "w"), sort_keys=False)
print("train:", cfg["train"])
EOF
rm -rf "$WORK/run"
set +e
timeout -s TERM -k 60 "$TRAIN_SECONDS" $Z train --data "$WORK/train" --config "$WORK/config.yaml" --out "$WORK/run" \
    --device "$DEVICE" --no-progress
rc=$?
set -e
echo "train exit code $rc (0 done, 124/130 stopped by time with a checkpoint)"
[[ $rc == 0 || $rc == 124 || $rc == 130 ]] || exit $rc

# 4. export the EMA weights and store them in float16 (the package's format)
step "4. export"
rm -rf "$WORK/export" "$WORK/model"
$Z export "$WORK/run" -o "$WORK/export"
$Z convert "$WORK/export" -o "$WORK/model" --half
du -sh "$WORK/model"

# 5. score the bundled model and the new one on both held-out sets (identity beside each)
step "5. eval nvs ($EVAL_STEPS DDIM steps)"
for set in objects primitives; do
    for model in bundled new; do
        path=$([[ $model == new ]] && echo "$WORK/model" || echo bundled)
        $Z eval nvs --data "$WORK/test_$set" --model "$path" --resolution "$SIZE" --steps "$EVAL_STEPS" \
            --device "$DEVICE" --no-progress --no-lpips -o "$WORK/eval_${set}_$model" | tee "$WORK/eval_${set}_$model.md"
    done
done

# 6. results back: summaries, the training log's tail, the model as a tar in 15 MiB parts
step "6. results to $OUT"
$PYTHON - "$WORK" "$OUT/summary.json" <<'EOF'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
out = {f"{s}_{m}": json.loads((work / f"eval_{s}_{m}" / "results.json").read_text())["summary"]
       for s in ("objects", "primitives") for m in ("bundled", "new")}
state = sorted((work / "run" / "checkpoints").glob("step-*"))
out["last_checkpoint"] = state[-1].name if state else None
Path(sys.argv[2]).write_text(json.dumps(out, indent=1))
for k, v in out.items():
    if isinstance(v, dict):
        print(k, {m: {q: v[m][q] for q in ("psnr", "ssim", "mask_iou")} for m in ("identity", "model")})
EOF
tar -C "$WORK" -cf "$WORK/model.tar" model
split -b 15M -d "$WORK/model.tar" "$OUT/model.tar.part-"
ls -la "$OUT"
step "done"
