"""Batched generation with the KV cache: prompts → token ids → outputs with a stop reason.

Prompts are sorted by length and cut into batches (little padding), left-padded for decoder-only models
so every row's answer starts at the same position, and generated with ``model.generate`` and its cache;
outputs come back in the prompts' order. Stopping follows the model's generation config, whose
``eos_token_id`` lists every end-of-turn token the run settled (``llmft.generate.chat_template``).

A server also needs, per prompt, stop strings, the text as it is made, and a way to give up on a prompt
whose client left: ``RowControl``, checked between decode steps (``llmft.generate.watch``). Without
controls nothing is added to ``model.generate``'s call, so `llmft generate` runs exactly as before.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

from llmft.generate.prompts import Prompt
from llmft.generate.watch import END_MARKER, RowControl, RowWatch, cut_at_stop


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens. ``temperature`` 0 is greedy decoding; above 0 samples (with top_p/top_k)."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int = 0
    batch_size: int = 16

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0


@dataclass
class Output:
    text: str
    new_tokens: int
    stop_reason: str  # "eos": an end-of-turn token; "length": max_new_tokens; "stop": a stop string;
    # "cancelled": its RowControl said so (only with controls)


@dataclass
class Progress:
    """What a progress display needs after each batch."""

    done: int
    total: int
    new_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


OnBatch = Callable[[Progress], None]


def prompt_ids(
    prompt: Prompt,
    tokenizer: object,
    *,
    chat: bool,
    system_prompt: str | None = None,
    tools: list[dict[str, object]] | None = None,
) -> list[int]:
    """A prompt's token ids: the run's chat template with the assistant turn opened (given ``tools`` rendered
    as the template renders them), or plain text with the tokenizer's own special tokens (as a text run or a
    seq2seq source was trained)."""
    if chat:
        extra = {"tools": tools} if tools else {}
        encoded = tokenizer.apply_chat_template(  # type: ignore[attr-defined]
            prompt.conversation(system_prompt), add_generation_prompt=True, **extra
        )
        return list(encoded["input_ids"])
    text = prompt.text if prompt.text is not None else prompt.source_text()
    return list(tokenizer(text)["input_ids"])  # type: ignore[operator]


def generation_config(model: object, tokenizer: object, sampling: Sampling) -> object:
    """The model's generation config (its stop ids) with this call's sampling settings."""
    from transformers import GenerationConfig

    from llmft.generate.chat_template import generation_config_of

    base = generation_config_of(model)
    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    sample = sampling.do_sample
    config.update(
        max_new_tokens=sampling.max_new_tokens,
        max_length=None,
        do_sample=sample,
        temperature=sampling.temperature if sample else None,
        top_p=sampling.top_p if sample else None,
        top_k=(sampling.top_k or None) if sample else None,
        repetition_penalty=sampling.repetition_penalty,
        pad_token_id=getattr(tokenizer, "pad_token_id", None),
        use_cache=True,
    )
    if config.eos_token_id is None:
        config.eos_token_id = getattr(tokenizer, "eos_token_id", None)
    return config


def stop_ids(config: object) -> set[int]:
    eos = getattr(config, "eos_token_id", None)
    return {int(i) for i in (eos if isinstance(eos, list) else [eos]) if i is not None}


def _pad(rows: list[list[int]], pad_id: int, left: bool) -> tuple[object, object]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.as_tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def decode_output(new: list[int], tokenizer: object, stops: set[int]) -> Output:
    """Cut at the first stop id; the text leaves out special tokens and a textual ChatML end marker."""
    end = next((i for i, token in enumerate(new) if token in stops), None)
    kept = new if end is None else new[:end]
    text = tokenizer.decode(kept, skip_special_tokens=True)  # type: ignore[attr-defined]
    text = text.removesuffix(END_MARKER) if end is not None else text
    return Output(text, len(new) if end is None else end + 1, "length" if end is None else "eos")


def _generate_batch(
    model: object, rows: list[list[int]], config: object, encoder_decoder: bool, watch: RowWatch | None
) -> list[list[int]]:
    import torch

    pad_id = int(getattr(config, "pad_token_id", None) or 0)
    ids, mask = _pad(rows, pad_id, left=not encoder_decoder)
    device = next(model.parameters()).device  # type: ignore[attr-defined]
    start = 1 if encoder_decoder else ids.shape[1]  # seq2seq output opens with the decoder start token
    extra = {}
    if watch is not None:
        extra["stopping_criteria"] = [watch.criterion(start)]
    with torch.inference_mode():
        out = model.generate(  # type: ignore[attr-defined]
            input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config, **extra
        )
    return [row[start:].tolist() for row in out.cpu()]


def _controlled_output(
    new: list[int], tokenizer: object, stops: set[int], watch: RowWatch, row: int
) -> Output:
    """A watched row's output: only the tokens it made before it stopped (a stopped row is padded after),
    its text cut at the first stop string, and the rest of that text streamed."""
    seen = watch.seen(row)
    output = decode_output(new[: seen if seen else len(new)], tokenizer, stops)
    text, hit = cut_at_stop(output.text, watch.controls[row].stop)
    reason = "cancelled" if watch.cancelled(row) else ("stop" if hit else output.stop_reason)
    watch.flush(row, text)
    return Output(text, output.new_tokens, reason)


def cut_after_stop_id(new: list[int], stops: set[int]) -> list[int]:
    """New tokens up to and including the first stop id (all of them when none stopped it): what the
    model actually said, without the padding a batch adds after a row's end."""
    end = next((i for i, token in enumerate(new) if token in stops), None)
    return new if end is None else new[: end + 1]


# What one generated row becomes: (new ids, stop ids, the batch's watch or None, its row) -> (result, tokens).
Finish = Callable[[list[int], set[int], "RowWatch | None", int], tuple[object, int]]


def _run_batches(
    model: object,
    tokenizer: object,
    prompts: list[list[int]],
    sampling: Sampling,
    finish: Finish,
    on_batch: OnBatch | None = None,
    controls: list[RowControl] | None = None,
) -> list[object]:
    """The one generation loop: prompts in batches of similar length, the model in eval mode, results in
    the prompts' order. ``controls`` (one per prompt) add stop strings, streaming and cancellation,
    checked between decode steps."""
    import torch

    config = generation_config(model, tokenizer, sampling)
    stops = stop_ids(config)
    encoder_decoder = bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: dict[int, object] = {}
    was_training = bool(getattr(model, "training", False))
    model.eval()  # type: ignore[attr-defined]
    started, made = time.perf_counter(), 0
    # A private RNG stream: generating inside a training run must not move the run's own random state.
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if torch.cuda.is_available() else []):
        torch.manual_seed(sampling.seed)
        try:
            for first in range(0, len(order), sampling.batch_size):
                batch = order[first : first + sampling.batch_size]
                watch = RowWatch([controls[i] for i in batch], tokenizer, stops) if controls else None
                rows = _generate_batch(model, [prompts[i] for i in batch], config, encoder_decoder, watch)
                for row, (i, new) in enumerate(zip(batch, rows)):
                    results[i], tokens = finish(new, stops, watch, row)
                    made += tokens
                if on_batch:
                    on_batch(Progress(len(results), len(prompts), made, time.perf_counter() - started))
        finally:
            model.train(was_training)  # type: ignore[attr-defined]
    return [results[i] for i in range(len(prompts))]


def generate_raw(
    model: object,
    tokenizer: object,
    prompts: list[list[int]],
    sampling: Sampling,
    on_batch: OnBatch | None = None,
) -> tuple[list[list[int]], set[int]]:
    """The new token ids of every prompt (each cut after its stop id) and the stop ids, on a private RNG
    stream seeded with ``sampling.seed`` (the run's own random state does not move): rollouts use this."""

    def finish(new: list[int], stops: set[int], watch: RowWatch | None, row: int) -> tuple[object, int]:
        kept = cut_after_stop_id(new, stops)
        return kept, len(kept)

    raw = _run_batches(model, tokenizer, prompts, sampling, finish, on_batch)
    return raw, stop_ids(generation_config(model, tokenizer, sampling))  # type: ignore[return-value]


def generate_ids(
    model: object,
    tokenizer: object,
    prompts: list[list[int]],
    sampling: Sampling,
    on_batch: OnBatch | None = None,
    controls: list[RowControl] | None = None,
) -> list[Output]:
    """Generate for every prompt, in batches of similar length; outputs in the prompts' order. ``controls``
    (one per prompt) add stop strings, streaming and cancellation, checked between decode steps."""

    def finish(new: list[int], stops: set[int], watch: RowWatch | None, row: int) -> tuple[object, int]:
        output = (
            decode_output(new, tokenizer, stops)
            if watch is None
            else _controlled_output(new, tokenizer, stops, watch, row)
        )
        return output, output.new_tokens

    return _run_batches(model, tokenizer, prompts, sampling, finish, on_batch, controls)  # type: ignore[return-value]
