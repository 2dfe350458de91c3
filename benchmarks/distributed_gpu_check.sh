#!/usr/bin/env bash
# On a machine with 2+ GPUs, in one command: llmft's DDP, FSDP2 and DeepSpeed ZeRO equality checks on the
# GPUs (nccl): N processes against 1 process with the same global batch (per-step losses, final weights).
# `bash benchmarks/distributed_gpu_check.sh 2` on a CPU machine runs the same checks with gloo.
#
#   bash benchmarks/distributed_gpu_check.sh [NPROC]        (from the repository root; default: all GPUs)
#
# Exit 0 when every check passed (set -e stops at the first that fails); DeepSpeed is skipped, and said
# so, when it is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
NPROC=${1:-$($PY -c "import torch; print(torch.cuda.device_count())")}
if [ "$NPROC" -lt 2 ]; then echo "needs at least 2 GPUs, or a process count (found $NPROC GPUs)"; exit 2; fi
WORK=$(mktemp -d -t llmft-gpu-check-XXXX)
export PYTHONPATH=src HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HOME=$WORK/hf
echo "== $NPROC GPUs, work dir $WORK"
$PY benchmarks/distributed_gpu_check.py prepare "$WORK" "$NPROC"

echo "== 1. llmft DDP: $NPROC processes (accumulation 1) against 1 process (accumulation $NPROC)"
$PY -m llmft train "$WORK/ddp.yaml" -q training.gradient_accumulation_steps="$NPROC" output_dir="$WORK/one"
$PY -m llmft train "$WORK/ddp.yaml" -q --nproc "$NPROC" output_dir="$WORK/ddp"
$PY benchmarks/distributed_gpu_check.py compare "$WORK/one" "$WORK/ddp"

echo "== 2. llmft FSDP2: $NPROC processes against the same 1-process run"
$PY -m llmft train "$WORK/ddp.yaml" -q --nproc "$NPROC" output_dir="$WORK/fsdp" training.distributed.strategy=fsdp
$PY benchmarks/distributed_gpu_check.py compare "$WORK/one" "$WORK/fsdp"

echo "== 3. llmft DeepSpeed: ZeRO-2 with the optimizer offloaded, then ZeRO-3, against the same 1-process run"
if $PY -c "import deepspeed" 2>/dev/null; then
  $PY -m llmft train "$WORK/ddp.yaml" -q --nproc "$NPROC" output_dir="$WORK/zero2" training.distributed.strategy=deepspeed \
    'training.distributed.deepspeed={"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}}}'
  $PY benchmarks/distributed_gpu_check.py compare "$WORK/one" "$WORK/zero2"
  $PY -m llmft train "$WORK/ddp.yaml" -q --nproc "$NPROC" output_dir="$WORK/zero3" training.distributed.strategy=deepspeed \
    'training.distributed.deepspeed={"zero_optimization": {"stage": 3}}'
  $PY benchmarks/distributed_gpu_check.py compare "$WORK/one" "$WORK/zero3"
else
  echo "deepspeed is not installed: skipped (pip install 'llmft[deepspeed]')"
fi
echo "== all checks passed"
