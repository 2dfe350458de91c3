"""LoRA on a float32 base against LoRA on a bitsandbytes 4-bit / 8-bit base, on this machine's CPU or GPU.

One mode per process (memory high-water marks do not mix), through llmft's own loading and adapter path
(`load_model` with `model.quantization`, `attach_adapter` with LoRA on the attention projections). The model
is GPT-2-small shaped (12 layers, 768 wide, 50257 tokens) with random weights, written once to --model.

    PYTHONPATH=src .venv/bin/python benchmarks/quantized_base.py --model /tmp/gpt2-small make
    for m in fp32 bnb-4bit bnb-8bit; do
        PYTHONPATH=src .venv/bin/python benchmarks/quantized_base.py --model /tmp/gpt2-small $m; done

Printed per mode: RSS after loading (Linux VmRSS), the peak RSS of the training steps alone (VmHWM reset
after loading), the process's peak (loading included), and the median step time, wall and CPU (the CPU time
is the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

import torch


def _status(key: str) -> float:
    """A /proc/self/status figure in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return float("nan")


def make(path: Path) -> None:
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from llmft.synth.models import builtin_corpus, train_tokenizer

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=12, n_embd=768, n_head=12)).save_pretrained(path)
    tokenizer = train_tokenizer(builtin_corpus()[:200], kind="gpt2", vocab_size=400)
    tokenizer.save_pretrained(path)
    AutoTokenizer.from_pretrained(path)  # readable


def run(path: Path, mode: str, steps: int, batch: int, length: int) -> str:
    from llmft.adapters.build import attach_adapter
    from llmft.config.schema import ModelConfig
    from llmft.models.load import load_model, load_tokenizer

    quant = None if mode == "fp32" else {"method": mode}
    cfg = ModelConfig(name_or_path=str(path), quantization=quant)
    start = time.perf_counter()
    model = load_model(cfg, "causal_lm", tokenizer=load_tokenizer(str(path)))
    load_s = time.perf_counter() - start
    model, summary = attach_adapter(model, cfg.adapter, "causal_lm")
    gc.collect()
    after_load = _status("VmRSS:")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: the training steps alone from here
    ids = torch.randint(0, 50257, (batch, length), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    walls, cpus, losses = [], [], []
    for _ in range(steps):
        wall, cpu = time.perf_counter(), time.process_time()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        losses.append(loss.item())
    return (
        f"{mode}: rss_after_load={after_load:.0f}MiB train_peak_rss={_status('VmHWM:'):.0f}MiB "
        f"process_peak_rss={_peak():.0f}MiB load={load_s:.1f}s "
        f"step_wall_median={statistics.median(walls[1:]):.2f}s "
        f"step_cpu_median={statistics.median(cpus[1:]):.2f}s "
        f"loss {losses[0]:.3f}->{losses[-1]:.3f} trainable={summary.trainable_params:,}"
    )


def _peak() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["make", "fp32", "bnb-4bit", "bnb-8bit"])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "make":
        make(args.model)
    else:
        print(run(args.model, args.mode, args.steps, args.batch, args.length), flush=True)


if __name__ == "__main__":
    main()
