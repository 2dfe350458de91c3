"""Helpers of benchmarks/distributed_gpu_check.sh (run that script; it calls these steps in order).

``prepare``: a tiny Llama, synthetic data and the run config. ``compare``: an N-process run's (DDP,
FSDP or DeepSpeed) per-step losses and adapter weights against the 1-process run's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def prepare(work: Path, nproc: int) -> None:
    from llmft.synth.data import write_synthetic_data
    from llmft.synth.models import build_tiny_model

    model = build_tiny_model("llama", work / "model", hidden_size=128, num_layers=4)
    data = write_synthetic_data("sft", work / "data", rows=16 * nproc * 4)
    config = {
        "seed": 0,
        "data": {"dataset": {"train_file": str(data["train"])}, "packing": True},
        "model": {"name_or_path": str(model), "adapter": {"type": "lora", "r": 8}},
        "training": {
            "max_steps": 8,
            "batch_size": 4,
            "logging_steps": 1,
            "eval_strategy": "no",
            "save_strategy": "no",
            "mixed_precision": "no",
            "learning_rate": 1e-3,
        },
    }
    (work / "ddp.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


def compare(one: Path, many: Path) -> None:
    from safetensors.torch import load_file

    def losses(run: Path) -> list[float]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line)["loss"] for line in lines if "loss" in json.loads(line)]

    a, b = losses(one), losses(many)
    worst = max(abs(x - y) / abs(x) for x, y in zip(a, b, strict=True))
    wa = load_file(str(one / "model" / "adapter_model.safetensors"))
    wb = load_file(str(many / "model" / "adapter_model.safetensors"))
    diff = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    what = many.name
    print(
        f"{what}: {len(a)} steps, worst relative loss difference {worst:.2e}, weights max |diff| {diff:.2e}"
    )
    if worst > 1e-4 or diff > 1e-4:  # GPU kernels (TF32, split-K) are less deterministic than CPU ones
        raise SystemExit(f"{what} check FAILED: the N-process run differs from the 1-process run")


if __name__ == "__main__":
    step, rest = sys.argv[1], sys.argv[2:]
    if step == "prepare":
        prepare(Path(rest[0]), int(rest[1]))
    else:
        compare(Path(rest[0]), Path(rest[1]))
