"""`llmft generate` as a library call: pick the prompts, generate in batches, make JSONL records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from llmft.errors import ConfigError
from llmft.generate.batch import OnBatch, Sampling, generate_ids, prompt_ids
from llmft.generate.load import LoadedRun
from llmft.generate.prompts import Prompt, read_prompt_file, split_prompts


def choose_prompts(
    loaded: LoadedRun,
    *,
    prompts: list[str] | None = None,
    file: Path | None = None,
    split: str | None = None,
    max_rows: int | None = None,
) -> list[Prompt]:
    """Exactly one source of prompts: ``--prompt`` (repeatable), ``--file`` or ``--split``."""
    given = [name for name, value in (("--prompt", prompts), ("--file", file), ("--split", split)) if value]
    if len(given) != 1:
        raise ConfigError(
            "give prompts one way: " + (f"got {' and '.join(given)}" if given else "none was given"),
            fix="use --prompt TEXT (repeatable), --file PROMPTS.jsonl|.txt, or --split test|validation",
        )
    if prompts:
        found = [Prompt(text=text) for text in prompts]
    elif file is not None:
        found = read_prompt_file(file)
    else:
        if loaded.run_dir is None:
            raise ConfigError(
                f"--split needs a run dir (with config.yaml), and {loaded.model_dir} is a model dir",
                fix="pass the run's output_dir, or give prompts with --prompt/--file",
            )
        found = split_prompts(loaded.run_dir, str(split), max_rows)
    return found[:max_rows] if max_rows else found


def generate_records(
    loaded: LoadedRun,
    prompts: list[Prompt],
    sampling: Sampling,
    *,
    system_prompt: str | None = None,
    on_batch: OnBatch | None = None,
    compare_base: bool = False,
) -> list[dict[str, object]]:
    """One record per prompt: prompt, output, new_tokens, stop_reason (and the reference when known).

    ``compare_base``: also answer each prompt with the adapter switched off (``base_output``): the same
    weights in memory, the same template and sampling, so the two columns differ only by what was trained.
    """
    system = system_prompt if system_prompt is not None else loaded.system_prompt
    ids = [prompt_ids(p, loaded.tokenizer, chat=loaded.chat, system_prompt=system) for p in prompts]
    base = _base_outputs(loaded, ids, sampling) if compare_base else None
    outputs = generate_ids(loaded.model, loaded.tokenizer, ids, sampling, on_batch)
    records = []
    for index, (prompt, output) in enumerate(zip(prompts, outputs)):
        record: dict[str, object] = {
            "prompt": prompt.shown(),
            "output": output.text,
            "new_tokens": output.new_tokens,
            "stop_reason": output.stop_reason,
        }
        if prompt.reference is not None:
            record["reference"] = prompt.reference
        if base is not None:
            record["base_output"] = base[index].text
        records.append(record)
    return records


def _base_outputs(loaded: LoadedRun, ids: list[list[int]], sampling: Sampling) -> list[object]:
    """The answers of the base model under the run's adapter (peft's ``disable_adapter``)."""
    disable = getattr(loaded.model, "disable_adapter", None)
    if disable is None:
        raise ConfigError(
            f"--compare-base needs a run trained with an adapter, and {loaded.model_dir} holds full weights "
            "(the base model's were replaced)",
            fix="run `llmft generate` on the base model's folder (or .gguf file) for its answers",
        )
    with disable():
        return generate_ids(loaded.model, loaded.tokenizer, ids, sampling, None)


def write_records(records: list[dict[str, object]], handle: TextIO) -> None:
    for record in records:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def summary(records: list[dict[str, object]], seconds: float) -> str:
    """One line: rows, share stopped at an end-of-turn token, speed, and exact match when references exist."""
    n = max(len(records), 1)
    tokens = sum(int(r["new_tokens"]) for r in records)  # type: ignore[call-overload]
    eos = sum(r["stop_reason"] == "eos" for r in records) / n
    line = f"{len(records)} prompts, {eos:.0%} stopped at end-of-turn, {tokens} new tokens"
    line += f" in {seconds:.1f}s ({tokens / seconds:,.0f} tok/s)" if seconds > 0 else ""
    scored = [r for r in records if "reference" in r]
    if scored:
        exact = sum(str(r["output"]).strip() == str(r["reference"]).strip() for r in scored) / len(scored)
        line += f", exact match {exact:.0%} of {len(scored)} with references"
    return line
