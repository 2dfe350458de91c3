#!/usr/bin/env bash
# On a machine with 2+ GPUs, in one command: llmft's DDP equality check on the GPUs (nccl), then the FSDP2
# and DeepSpeed engines driven by llmft's translated configs (train/strategies.py) on a tiny model.
#
#   bash benchmarks/distributed_gpu_check.sh [NPROC]        (from the repository root; default: all GPUs)
#
# Exit 0 when every check passed; DeepSpeed is skipped (and said so) when it is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
NPROC=${1:-$($PY -c "import torch; print(torch.cuda.device_count())")}
if [ "$NPROC" -lt 2 ]; then echo "needs at least 2 GPUs (found $NPROC)"; exit 2; fi
WORK=$(mktemp -d -t llmft-gpu-check-XXXX)
export PYTHONPATH=src HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HOME=$WORK/hf
echo "== $NPROC GPUs, work dir $WORK"
$PY benchmarks/distributed_gpu_check.py prepare "$WORK" "$NPROC"

echo "== 1. llmft DDP: $NPROC processes (accumulation 1) against 1 process (accumulation $NPROC)"
$PY -m llmft train "$WORK/ddp.yaml" -q training.gradient_accumulation_steps="$NPROC" output_dir="$WORK/one"
$PY -m llmft train "$WORK/ddp.yaml" -q --nproc "$NPROC" output_dir="$WORK/many"
$PY benchmarks/distributed_gpu_check.py compare "$WORK/one" "$WORK/many"

echo "== 2. FSDP2 (accelerate plugin from llmft's fsdp settings) against DDP"
$PY -m torch.distributed.run --standalone --nproc-per-node "$NPROC" benchmarks/distributed_gpu_check.py engine ddp "$WORK"
$PY -m torch.distributed.run --standalone --nproc-per-node "$NPROC" benchmarks/distributed_gpu_check.py engine fsdp "$WORK"

echo "== 3. DeepSpeed ZeRO-2 with optimizer offload, ZeRO-3 (llmft's deepspeed translation)"
if $PY -c "import deepspeed" 2>/dev/null; then
  for engine in zero2_offload zero3; do
    $PY -m torch.distributed.run --standalone --nproc-per-node "$NPROC" benchmarks/distributed_gpu_check.py engine "$engine" "$WORK"
  done
else
  echo "deepspeed is not installed: skipped (pip install deepspeed)"
fi
$PY benchmarks/distributed_gpu_check.py verdict "$WORK"
