"""Helpers of benchmarks/distributed_gpu_check.sh (run that script; it calls these steps in order).

``prepare``: a tiny Llama, synthetic data and the DDP run config. ``compare``: the N-process run's
per-step losses and adapter weights against the 1-process run's. ``engine NAME``: under torchrun, a few
full fine-tuning steps of the tiny model through accelerate with DDP, or the FSDP2 / DeepSpeed plugin
built from llmft's translation (train/strategies.py); rank 0 records the losses. ``verdict``: each
engine's losses against DDP's (bf16: 2e-2 relative), and a summary.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

STEPS = 5


def prepare(work: Path, nproc: int) -> None:
    from llmft.data.synthetic import write_synthetic_data
    from llmft.models.tiny import build_tiny_model

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
    print(f"DDP: {len(a)} steps, worst relative loss difference {worst:.2e}, weights max |diff| {diff:.2e}")
    if worst > 1e-4 or diff > 1e-4:  # GPU kernels (TF32, split-K) are less deterministic than CPU ones
        raise SystemExit("DDP check FAILED: the N-process run differs from the 1-process run")


def _accelerator(name: str, work: Path):
    from accelerate import Accelerator, DeepSpeedPlugin, FullyShardedDataParallelPlugin

    from llmft.config.schema import FsdpConfig, TrainingConfig
    from llmft.train.strategies import deepspeed_config, fsdp_plugin_kwargs

    if name == "ddp":
        return Accelerator(mixed_precision="bf16")
    if name == "fsdp":
        kwargs = fsdp_plugin_kwargs(FsdpConfig(), ["LlamaDecoderLayer"])
        return Accelerator(mixed_precision="bf16", fsdp_plugin=FullyShardedDataParallelPlugin(**kwargs))
    source = (
        Path("configs/deepspeed/zero2_offload.json")
        if name == "zero2_offload"
        else {"zero_optimization": {"stage": 3}, "bf16": {"enabled": "auto"}}
    )
    ds = deepspeed_config(
        str(source) if isinstance(source, Path) else source,
        TrainingConfig(batch_size=2, max_grad_norm=1.0),
        "bf16",
    )
    return Accelerator(mixed_precision="bf16", deepspeed_plugin=DeepSpeedPlugin(hf_ds_config=ds))


def engine(name: str, work: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    accelerator = _accelerator(name, work)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(work / "model"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model, optimizer = accelerator.prepare(model, optimizer)
    generator = torch.Generator().manual_seed(1)
    data = torch.randint(
        0, model.config.vocab_size, (STEPS, accelerator.num_processes, 2, 32), generator=generator
    )
    losses = []
    for step in range(STEPS):
        ids = data[step, accelerator.process_index].to(accelerator.device)
        loss = model(input_ids=ids, labels=ids).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(accelerator.reduce(loss.detach(), "mean")))
    if accelerator.is_main_process:
        (work / f"engine-{name}.json").write_text(json.dumps(losses))
        print(f"{name}: losses {[round(x, 4) for x in losses]}")
    accelerator.end_training()


def verdict(work: Path) -> None:
    reference = json.loads((work / "engine-ddp.json").read_text())
    failed = []
    for path in sorted(work.glob("engine-*.json")):
        losses = json.loads(path.read_text())
        worst = max(abs(a - b) / abs(b) for a, b in zip(losses, reference, strict=True))
        ok = worst <= 2e-2
        print(
            f"{path.stem[7:]}: worst relative loss difference to DDP {worst:.2e} ({'ok' if ok else 'FAILED'})"
        )
        failed += [] if ok else [path.stem]
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    step, rest = sys.argv[1], sys.argv[2:]
    if step == "prepare":
        prepare(Path(rest[0]), int(rest[1]))
    elif step == "compare":
        compare(Path(rest[0]), Path(rest[1]))
    elif step == "engine":
        engine(rest[0], Path(rest[1]))
    else:
        verdict(Path(rest[0]))
