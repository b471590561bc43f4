#!/usr/bin/env bash
# The issue-13 figures on a lent GPU, in one command (about 5-8 minutes on an H200):
#   benchmarks/gpu_check.sh [results folder]        (default benchmarks/results/gpu)
# 1. compute-only ceilings (random tensors on the GPU, no data path): IDM training at batch
#    64/256/1,024 and extraction, world model at batch 16/128; fp32, bf16, channels-last, compile;
# 2. the data path alone: batches assembled per second, streamed vs held in GPU memory;
# 3. real training with the in-memory data path: IDM (batch 64, 1,024 fp32 and bf16) and embedding
#    extraction, autoencoder and world model steps/s, CEM plans/s.
# Needs the racing and first_person demo recordings in $WORKBENCH_CACHE (copy a cache that has them:
# recording needs the emulators); models go to a temporary library. PYTHON picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-benchmarks/results/gpu}"
py="${PYTHON:-python}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible to torch'"
for suite in compute loader idm worldmodel; do
    echo "== $suite"
    "$py" -m benchmarks "$suite" --device cuda --out "$out"
done
