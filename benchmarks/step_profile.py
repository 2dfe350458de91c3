"""Time and profile one training step of each batching/loss variant, in one process, interleaved.

Not part of `llmft bench` (which runs whole contenders in subprocesses): this is the microscope used to
find where llmft's step time goes. Same model, same LoRA, same examples; per variant the real tokens per
second of forward+backward (no optimizer), median of the repeats, and optionally a torch profiler table.

    PYTHONPATH=src .venv/bin/python benchmarks/step_profile.py --model bench-out/models/gpt2-124m \
        --variants packed,grouped,hf --repeats 3 [--profile packed]

Variants: ``packed`` (llmft's default: packed rows, selective head), ``grouped`` (llmft with packing off),
``hf`` (the script's step: random order, padded to the longest row, full logits).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch

ALPACA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "alpaca_en_demo.json"


def load(model_dir: str, dropout_off: bool, attn: str):
    from llmft.adapters.build import attach_adapter
    from llmft.config.schema import ModelConfig
    from llmft.models.load import load_model, load_tokenizer

    cfg = ModelConfig.model_validate(
        {
            "name_or_path": model_dir,
            "disable_dropout": dropout_off,
            "attn_implementation": attn,
            "adapter": {"type": "lora", "r": 16, "alpha": 32},
        }
    )
    tok = load_tokenizer(model_dir)
    model = load_model(cfg, "causal_lm", tokenizer=tok)
    model, _ = attach_adapter(model, cfg.adapter, "causal_lm")
    from llmft.train.packed_attention import enable

    enable(
        model, 512
    )  # as llmft train does with packing; exact for the padded variants too (they have a mask)
    model.train()
    return model, tok


def examples(tok, rows: int):
    from llmft.config.schema import DataConfig
    from llmft.data.build import encode_splits, prepare_rows

    data = DataConfig.model_validate(
        {
            "dataset": {"train_file": str(ALPACA), "validation_fraction": 0.0, "max_train_rows": rows},
            "preprocessing": {"template": "chatml"},
            "tokenization": {"max_length": 512},
        }
    )
    return encode_splits(prepare_rows(data, 0), data, tok, "causal_lm").examples["train"]


def batches(variant: str, ex, tok, batch: int, packed_batch: int, seed: int):
    """The same rows for every variant: packed, length-grouped (llmft's two modes) or in random order (hf)."""
    from llmft.data.collate import PackedCollator, PadCollator, pack_examples

    rng = random.Random(seed)
    pad = tok.pad_token_id
    if variant.startswith("packed"):
        packs = pack_examples(ex, 512)
        rng.shuffle(packs)
        return [
            PackedCollator(pad, 512)(packs[i : i + packed_batch]) for i in range(0, len(packs), packed_batch)
        ]
    idx = list(range(len(ex)))
    rng.shuffle(idx)
    if variant.startswith("grouped"):
        idx.sort(key=lambda i: len(ex[i]["input_ids"]))
    groups = [idx[i : i + batch] for i in range(0, len(idx), batch)]
    collate = PadCollator(pad, pad_to_multiple_of=8 if variant.startswith("grouped") else None)
    return [collate([ex[i] for i in g]) for g in groups]


def step(variant: str, model, batch) -> None:
    from llmft.train.loss import selective_lm_loss

    if variant.startswith("hf"):
        inputs = {k: v for k, v in batch.items() if k != "token_mask"}
        out = model(**inputs, use_cache=False)
        out.loss.backward()
    else:
        loss, n = selective_lm_loss(model, {k: v for k, v in batch.items() if k != "token_mask"})
        (loss / max(n, 1)).backward()
    model.zero_grad(set_to_none=True)


def real_tokens(batch, pad: int) -> int:
    return int((batch["input_ids"] != pad).sum())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--variants", default="packed,grouped,hf")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--steps", type=int, default=2, help="padded batches per pass (same rows for every variant)"
    )
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--packed-batch", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--attn", default="sdpa")
    p.add_argument("--dropout", action="store_true", help="keep the model's dropout (hf default)")
    p.add_argument("--profile", default="", help="variant to run under torch.profiler once")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, tok = load(args.model, not args.dropout, args.attn)
    ex = examples(tok, 400)
    variants = args.variants.split(",")
    per_pass = args.steps * args.batch
    subsets = [ex[i * per_pass : (i + 1) * per_pass] for i in range(args.repeats + 1)]
    for v in variants:  # warm-up
        step(v, model, batches(v, subsets[0], tok, args.batch, args.packed_batch, 0)[0])
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.repeats):
        for v in variants[r % len(variants) :] + variants[: r % len(variants)]:
            chosen = batches(v, subsets[r + 1], tok, args.batch, args.packed_batch, r)
            t = time.perf_counter()
            for b in chosen:
                step(v, model, b)
            rates[v].append(sum(real_tokens(b, tok.pad_token_id) for b in chosen) / (time.perf_counter() - t))
    print(
        json.dumps(
            {
                v: {"median_tok_s": statistics.median(x), "all": [round(y, 1) for y in x]}
                for v, x in rates.items()
            },
            indent=1,
        )
    )
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step(
                args.profile,
                model,
                batches(args.profile, subsets[0], tok, args.batch, args.packed_batch, 0)[0],
            )
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
