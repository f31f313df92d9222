#!/usr/bin/env bash
# The GPU checks, as one job on a machine with one CUDA GPU and torch installed (never in CI).
# Writes its figures under ${OUT:-bench/out}. Python packages archc needs beyond torch may come
# as wheels in .whl/ (installed into /tmp/site). Each step is bounded so the rest still runs.
set -u
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
step() { echo "== $1"; shift; timeout "$@" 2>&1 | tee -a "$OUT/gpu.log"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.log"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.log"

# 1. archc train vs a hand-written loop, ResNet-50 on synthetic ImageNet-sized data (goal >= 0.95x)
step "train resnet50" 150 python3 bench/train_gpu.py --net resnet50 --samples 7200 --batch 128 --amp bf16 \
  --channels-last --json "$OUT/train_resnet50.json"
# 2. archc vs hand-written modules: bf16 + channels_last, then fp32; img/s, peak memory vs estimate
step "speed bf16 channels_last" 90 python3 bench/speed.py --device cuda --batch 64 --rounds 10 --amp bf16 \
  --channels-last --json "$OUT/speed_bf16_cl.json"
step "speed fp32" 90 python3 bench/speed.py --device cuda --batch 64 --rounds 10 --json "$OUT/speed_fp32.json"
# 3. nccl DDP with one process; fp16 with GradScaler
step "ddp nccl" 60 python3 -m torch.distributed.run --standalone --nproc-per-node 1 -m archc.cli train resnet18 \
  --data synthetic:2048 --input 3x64x64 --set num_classes=10 --epochs 1 --batch-size 128 --device cuda --out /tmp/ddp
step "fp16" 60 python3 -m archc.cli train resnet18 --data synthetic:2048 --input 3x64x64 --set num_classes=10 \
  --epochs 2 --batch-size 128 --amp fp16 --device cuda --out /tmp/fp16
# 4. torch.compile (inductor), bf16 + channels_last, the two cheapest to compile
step "speed compile" 130 python3 bench/speed.py --device cuda --batch 64 --rounds 10 --amp bf16 --channels-last \
  --compile --nets resnet50,mobilenet_v2 --json "$OUT/speed_compile.json"
echo "== done"
