"""`llmft preview CONFIG [-n 3]`: a dry run. Shows what the model will see and what it will cost.

For each of the first rows: the rendered text with the trained-on part highlighted (the loss mask) and its
token count; per split the rows kept/dropped and why, token-length percentiles and the fraction truncated;
the trainable parameter count (model built on the meta device: no weights are loaded) and an estimate of
peak memory against the memory this machine has. Nothing is trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text

from llmft.config.schema import RunConfig
from llmft.data.labels import IGNORE


@dataclass
class PreviewResult:
    """What preview found; `examples` are (segments [(text, trained)], token count)."""

    task: str
    data_format: str
    template: str | None
    examples: list[tuple[list[tuple[str, bool]], int]] = field(default_factory=list)
    splits: dict[str, dict[str, object]] = field(default_factory=dict)
    trainable_params: int | None = None
    total_params: int | None = None
    memory: object = None
    machine_memory: int | None = None
    objective: str = "sft"
    titles: list[str] = field(default_factory=list)  # per example, for preference pairs: chosen / rejected


def mask_segments(tokenizer: object, ids: list[int], labels: list[int] | int) -> list[tuple[str, bool]]:
    """Consecutive tokens with the same mask state, decoded together."""
    if not isinstance(labels, list):
        return [(tokenizer.decode(ids), False)]  # type: ignore[attr-defined]
    segments: list[tuple[str, bool]] = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or (labels[i] != IGNORE) != (labels[start] != IGNORE):
            segments.append((tokenizer.decode(ids[start:i]), labels[start] != IGNORE))  # type: ignore[attr-defined]
            start = i
    return segments


def _param_counts(config: RunConfig, model_config: object, task: str) -> tuple[int | None, int | None]:
    """Trainable and total parameters, from a meta-device model with the adapter attached (no weights)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    from llmft.adapters.build import attach_adapter

    cls = {"causal_lm": AutoModelForCausalLM, "seq2seq_lm": AutoModelForSeq2SeqLM}.get(
        task, AutoModelForSequenceClassification
    )
    try:
        with torch.device("meta"):
            model = cls.from_config(model_config)
            if config.model.adapter.type not in ("qlora",):
                _, summary = attach_adapter(model, config.model.adapter, task)
                return summary.trainable_params, summary.total_params
            total = sum(p.numel() for p in model.parameters())
            return None, total
    except Exception:  # noqa: BLE001 - counts are informative; preview goes on without them
        return None, None


def machine_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def scored_sequences(example: dict[str, object]) -> list[tuple[str, list[int], list[int]]]:
    """(title, ids, labels) of what an example puts through the model; a preference pair gives its chosen and
    rejected sequences (a KTO row its judged one), the completion being the scored part."""
    if "prompt_ids" not in example:
        return [("", list(example["input_ids"]), example["labels"])]  # type: ignore[call-overload,list-item]
    prompt = list(example["prompt_ids"])  # type: ignore[call-overload]
    names = {"chosen_ids": "chosen", "rejected_ids": "rejected", "completion_ids": "completion"}
    if "desirable" in example:
        names["completion_ids"] = "desirable" if example["desirable"] else "undesirable"
    return [
        (title, prompt + list(example[key]), [IGNORE] * len(prompt) + list(example[key]))  # type: ignore[call-overload]
        for key, title in names.items()
        if key in example
    ]


def build_preview(config: RunConfig, rows: int = 3) -> PreviewResult:
    from llmft.data.build import prepare_rows
    from llmft.doctor.memory import estimate_from_config
    from llmft.models.load import infer_task, load_model_config, load_tokenizer
    from llmft.train.objectives.choose import choose_objective, encode_for_objective, task_for

    prepared = prepare_rows(config.data, config.seed, config.hf_token)
    model_config = load_model_config(config.model, config.hf_token)
    task, why = infer_task(config.model, model_config, prepared.has_labels)
    objective, _ = choose_objective(config.training, prepared.format)
    task, _ = task_for(config.model, objective, task, why)
    own = config.data.tokenization.tokenizer
    tokenizer = load_tokenizer(
        own or config.model.name_or_path,
        trust_remote_code=config.model.trust_remote_code,
        token=config.hf_token,
        gguf_file=None if own else config.model.gguf_file,
    )
    preference = config.training.preference
    encoded = encode_for_objective(objective, prepared, config.data, preference, tokenizer, task)
    result = PreviewResult(task, prepared.format, encoded.template, objective=objective)
    for example in encoded.examples["train"][:rows]:
        for title, ids, labels in scored_sequences(example):
            result.examples.append((mask_segments(tokenizer, ids, labels), len(ids)))
            result.titles.append(title)
    for split, stats in encoded.stats.items():
        report = prepared.reports[split]
        result.splits[split] = {
            **report.to_dict(),
            **stats.to_dict(),
            "fraction_truncated": stats.truncated / max(stats.rows, 1),
        }
    result.trainable_params, result.total_params = _param_counts(config, model_config, task)
    result.memory = estimate_from_config(config)
    result.machine_memory = machine_memory_bytes()
    return result


def print_preview(result: PreviewResult, console: Console) -> None:
    console.print(
        f"[bold]task[/] {result.task}   [bold]format[/] {result.data_format}   "
        f"[bold]template[/] {result.template or '-'}   [bold]objective[/] {result.objective}"
    )
    for i, (segments, count) in enumerate(result.examples, start=1):
        title = result.titles[i - 1] if i <= len(result.titles) and result.titles[i - 1] else ""
        what = f"{title}, scored part" if title else "trained part"
        console.rule(f"example {i}: {count} tokens ({what} in green)")
        text = Text()
        for piece, trained in segments:
            text.append(piece, style="bold green" if trained else "dim")
        console.print(text)
    console.rule("data")
    for split, info in result.splits.items():
        dropped = ", ".join(f"{n} {why}" for why, n in info["dropped"].items()) or "none"  # type: ignore[union-attr]
        console.print(
            f"{split}: {info['kept']}/{info['rows_in']} rows kept (dropped: {dropped}); "
            f"tokens {info['length_percentiles']}; {info['fraction_truncated']:.1%} truncated"
        )
    console.rule("cost")
    if result.trainable_params is not None:
        share = result.trainable_params / max(result.total_params or 1, 1)
        console.print(
            f"trainable parameters: {result.trainable_params:,} of {result.total_params:,} ({share:.2%})"
        )
    if result.memory is not None:
        console.print(f"estimated peak memory: {result.memory.describe()}")  # type: ignore[attr-defined]
        if result.machine_memory:
            fits = result.memory.total() <= result.machine_memory  # type: ignore[attr-defined]
            console.print(
                f"available memory: {result.machine_memory / 2**30:.1f} GiB — "
                + (
                    "fits"
                    if fits
                    else "[bold red]does not fit[/]: lower batch_size or max_length, "
                    "or enable training.gradient_checkpointing"
                )
            )
