"""Generation speed: `llmft generate`'s batched, left-padded, KV-cached path against a plain loop of
one-prompt-at-a-time ``model.generate`` calls, on the same prompts with the same greedy settings.

A benchmark, not a test (no timing assertions anywhere): prints both times, tokens/s and the ratio, and
checks that both ways produced the same answers (greedy decoding, so they must agree).

    PYTHONPATH=src .venv/bin/python benchmarks/generate_speed.py [--model DIR] [--prompts 32] \
        [--batch-size 16] [--max-new-tokens 24] [--rounds 3] [--hidden-size 256 --layers 4]

Without --model a tiny Llama (random weights, its own tokenizer) is built in a temporary folder; the
prompts are the sft rows of ``llmft synth data`` rendered with the model's chat template. A random model
never emits its end-of-turn token, so every answer runs to --max-new-tokens in both ways alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch


def build_model(args: argparse.Namespace, folder: Path) -> Path:
    from llmft.synth.models import build_tiny_model

    return build_tiny_model(
        "llama", folder / "model", hidden_size=args.hidden_size, num_layers=args.layers, num_heads=4
    )


def prompts(tokenizer: object, count: int) -> list[list[int]]:
    from llmft.generate.batch import prompt_ids
    from llmft.generate.prompts import from_raw
    from llmft.synth.data import generate_rows

    rows = generate_rows("sft", count, seed=1)
    return [prompt_ids(from_raw(r), tokenizer, chat=True) for r in rows]  # type: ignore[arg-type]


def one_at_a_time(
    model: object, tokenizer: object, ids: list[list[int]], max_new_tokens: int
) -> list[list[int]]:
    """The plain loop a script would write: one prompt per ``generate`` call."""
    out = []
    for row in ids:
        tensor = torch.tensor([row])
        generated = model.generate(  # type: ignore[attr-defined]
            input_ids=tensor,
            attention_mask=torch.ones_like(tensor),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,  # type: ignore[attr-defined]
        )
        out.append(generated[0, len(row) :].tolist())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="A saved causal LM dir or run dir; default: a new tiny Llama.")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds; medians are reported.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from llmft.generate.batch import Sampling, decode_output, generate_ids, generation_config, stop_ids
    from llmft.generate.load import load_run

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.model) if args.model else build_model(args, Path(tmp))
        loaded = load_run(path, device="cpu")
    model, tokenizer = loaded.model, loaded.tokenizer
    ids = prompts(tokenizer, args.prompts)
    sampling = Sampling(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    stops = stop_ids(generation_config(model, tokenizer, sampling))

    batched_times, loop_times, batched_cpu, loop_cpu = [], [], [], []
    with torch.inference_mode():
        one_at_a_time(model, tokenizer, ids[:2], 4)  # warm-up
        for _ in range(args.rounds):  # interleaved, so a busy machine slows both ways alike
            start, cpu = time.perf_counter(), time.process_time()
            batched = generate_ids(model, tokenizer, ids, sampling)
            batched_times.append(time.perf_counter() - start)
            batched_cpu.append(time.process_time() - cpu)
            start, cpu = time.perf_counter(), time.process_time()
            raw = one_at_a_time(model, tokenizer, ids, args.max_new_tokens)
            loop_times.append(time.perf_counter() - start)
            loop_cpu.append(time.process_time() - cpu)
    looped = [decode_output(r, tokenizer, stops) for r in raw]
    batched_s, loop_s = statistics.median(batched_times), statistics.median(loop_times)
    tokens = sum(o.new_tokens for o in batched)
    same = sum(a.text == b.text for a, b in zip(batched, looped))
    result = {
        "prompts": len(ids),
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "new_tokens": tokens,
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "batched_s": round(batched_s, 2),
        "one_at_a_time_s": round(loop_s, 2),
        "batched_tokens_per_s": round(tokens / batched_s, 1),
        "one_at_a_time_tokens_per_s": round(sum(o.new_tokens for o in looped) / loop_s, 1),
        "speedup": round(loop_s / batched_s, 2),
        "speedup_per_round": [round(b / a, 2) for a, b in zip(batched_times, loop_times)],
        # CPU seconds this process used: on a machine shared with other jobs, the steadier measure of work.
        "batched_cpu_s": round(statistics.median(batched_cpu), 2),
        "one_at_a_time_cpu_s": round(statistics.median(loop_cpu), 2),
        "cpu_speedup": round(statistics.median(loop_cpu) / statistics.median(batched_cpu), 2),
        "same_answers": f"{same}/{len(ids)}",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
