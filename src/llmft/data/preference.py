"""Preference rows → token ids: a prompt, and the completions scored against it.

The prompt is the chat template's rendering of the prompt turns up to the assistant's header (the
generation prompt); each completion is the assistant turn's text with its end-of-turn marker, nothing after.
Segments are tokenized one by one (as for SFT), so the prompt ids are a prefix of prompt + completion by
construction; the prompt rendered with the chosen and with the rejected answer must give the same ids
(a template that renders them differently is refused). Too long: the prompt is cut from the left to
``max_prompt_length`` (its end is what the answer follows), then the completions from the right.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from llmft.config.schema import DataConfig
from llmft.data.build import EncodedData, PreparedData
from llmft.data.pair_collate import example_length
from llmft.data.templates import Template, choose_template
from llmft.data.tokenize import TokenStats, leading_special_ids
from llmft.errors import DataError

Example = dict[str, object]


@dataclass(frozen=True)
class PairLimits:
    """How long a prompt + completion may be, and whether too-long rows are cut (else dropped)."""

    max_length: int
    max_prompt_length: int
    truncation: bool = True


class NoRoom(ValueError):
    """A prompt that leaves no room for the answer (with truncation off): a bad row."""


class TooLong(ValueError):
    """A row past max_length with truncation off: dropped and counted."""


@dataclass
class PromptEncoder:
    """Prompt / completion ids of a conversation whose last turn is the answer being scored."""

    tokenizer: object
    template: Template
    prefix: list[int] = field(default_factory=list)

    @classmethod
    def build(cls, tokenizer: object, template: Template) -> PromptEncoder:
        return cls(tokenizer, template, leading_special_ids(tokenizer))

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])  # type: ignore[operator]

    def split(self, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
        """(prompt ids, completion ids) of ``messages`` (the last one the assistant's answer)."""
        segments = self.template.segments(messages)
        last = max(i for i, s in enumerate(segments) if s.trainable)
        bos = getattr(self.tokenizer, "bos_token", None)
        starts_with_bos = bool(bos) and bool(segments) and segments[0].text.startswith(str(bos))
        prompt = [] if starts_with_bos else list(self.prefix)
        for segment in segments[:last]:
            prompt += self._ids(segment.text)
        completion = self._ids(segments[last].text)
        eos = getattr(self.tokenizer, "eos_token_id", None)
        while len(completion) > 1 and completion[-1] == completion[-2] == eos:  # no doubled EOS
            completion.pop()
        return prompt, completion


def fit(
    prompt: list[int], completions: list[list[int]], limits: PairLimits
) -> tuple[list[int], list[list[int]], bool]:
    """Cut a too-long row: the prompt from the left to max_prompt_length, then completions from the right.

    Returns the (maybe cut) prompt and completions and whether anything was cut. With truncation off, a
    too-long row raises TooLong, or NoRoom when the prompt alone fills max_length."""
    longest = max(len(c) for c in completions)
    if len(prompt) + longest <= limits.max_length:
        return prompt, completions, False
    if not limits.truncation:
        if len(prompt) >= limits.max_length:
            raise NoRoom(f"the prompt ({len(prompt)} tokens) leaves no room for the answer")
        raise TooLong
    if len(prompt) > limits.max_prompt_length:
        prompt = prompt[-limits.max_prompt_length :]
    room = limits.max_length - len(prompt)
    return prompt, [c[:room] for c in completions], True


@dataclass
class _Split:
    """One split's examples as they are made, with the counts for the data report."""

    examples: list[Example] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    no_room: list[tuple[object, str]] = field(default_factory=list)


def _encode_pair(row: dict[str, object], encoder: PromptEncoder) -> Example:
    messages = row["messages"]
    prompt, chosen = encoder.split(messages)  # type: ignore[arg-type]
    rejected_turns = [*messages[:-1], {"role": "assistant", "content": row["rejected"]}]  # type: ignore[index]
    prompt_again, rejected = encoder.split(rejected_turns)
    if prompt_again != prompt:
        raise DataError(
            "the chat template renders the prompt differently before the chosen and the rejected answer, "
            "so the two cannot be scored against one prompt",
            fix="set data.preprocessing.template: chatml (or alpaca)",
        )
    return {"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected}


def _encode_single(row: dict[str, object], encoder: PromptEncoder) -> Example:
    prompt, completion = encoder.split(row["messages"])  # type: ignore[arg-type]
    return {"prompt_ids": prompt, "completion_ids": completion, "desirable": int(bool(row["desirable"]))}


def _fitted(example: Example, limits: PairLimits, split: _Split, row: object) -> Example | None:
    keys = [k for k in ("chosen_ids", "rejected_ids", "completion_ids") if k in example]
    try:
        prompt, parts, cut = fit(example["prompt_ids"], [example[k] for k in keys], limits)  # type: ignore[arg-type,misc]
    except NoRoom as why:
        split.no_room.append((row, str(why)))
        return None
    except TooLong:
        split.counts["dropped_too_long"] += 1
        return None
    split.counts["truncated"] += int(cut)
    return {**example, "prompt_ids": prompt, **dict(zip(keys, parts, strict=True))}


def unpair(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Pairs → unpaired rows for KTO: the chosen answer desirable, the rejected one not."""
    out: list[dict[str, object]] = []
    for row in rows:
        messages = row["messages"]
        rejected = [*messages[:-1], {"role": "assistant", "content": row["rejected"]}]  # type: ignore[index]
        out.append({"messages": messages, "desirable": True, "row": row.get("row")})
        out.append({"messages": rejected, "desirable": False, "row": row.get("row")})
    return out


def add_kl_partners(examples: list[Example], limits: PairLimits) -> None:
    """KTO's KL estimate scores each prompt with another row's completion: row i gets row i-1's (rotated,
    as TRL does), cut to the room its own prompt leaves. Fixed here, so reference log-probs can be cached."""
    for i, example in enumerate(examples):
        other = examples[i - 1]["completion_ids"] if len(examples) > 1 else example["completion_ids"]
        room = limits.max_length - len(example["prompt_ids"])  # type: ignore[arg-type]
        example["kl_completion_ids"] = list(other)[: max(1, room)]  # type: ignore[call-overload]


def encode_split(
    rows: list[dict[str, object]], encoder: PromptEncoder, limits: PairLimits, unpaired: bool
) -> _Split:
    split = _Split()
    encode = _encode_single if unpaired else _encode_pair
    for row in rows:
        fitted = _fitted(encode(row, encoder), limits, split, row.get("row"))
        if fitted is not None:
            split.examples.append(fitted)
    if unpaired:
        add_kl_partners(split.examples, limits)
    return split


def _stats(split: _Split) -> TokenStats:
    stats = TokenStats(rows=len(split.examples))
    stats.truncated = split.counts["truncated"]
    stats.dropped_too_long = split.counts["dropped_too_long"] + len(split.no_room)
    stats.lengths = [example_length(e) for e in split.examples]
    completion_keys = ("chosen_ids", "rejected_ids", "completion_ids")
    stats.trained_tokens = sum(len(e[k]) for e in split.examples for k in completion_keys if k in e)  # type: ignore[arg-type]
    return stats


def _refuse_no_room(split: _Split, name: str, prepared: PreparedData, cfg: DataConfig) -> None:
    if not split.no_room or cfg.preprocessing.on_bad_rows == "skip":
        return
    first = "; ".join(f"row {row}: {why}" for row, why in split.no_room[:5])
    more = f" (and {len(split.no_room) - 5} more)" if len(split.no_room) > 5 else ""
    raise DataError(
        f"{len(split.no_room)} bad row(s) in the {name} split: {first}{more}",
        where=prepared.origin,
        fix="raise training.preference.max_length, turn data.tokenization.truncation on (the prompt is then "
        "cut from the left), or set data.preprocessing.on_bad_rows: skip to drop and count them",
    )


def encode_preference_splits(
    prepared: PreparedData, cfg: DataConfig, tokenizer: object, limits: PairLimits, unpaired: bool
) -> EncodedData:
    """Tokenize every split as pairs (or, ``unpaired``, as judged completions for KTO)."""
    template = choose_template(cfg.preprocessing.template, tokenizer, prepared.format)
    encoder = PromptEncoder.build(tokenizer, template)
    out = EncodedData(examples={}, template=template.name)
    for name, rows in prepared.rows.items():
        if unpaired and prepared.format == "preference":
            rows = unpair(rows)
        split = encode_split(rows, encoder, limits, unpaired)
        _refuse_no_room(split, name, prepared, cfg)
        out.examples[name], out.stats[name] = split.examples, _stats(split)
    if not out.examples.get("train"):
        raise DataError(
            "no training pairs left after tokenization (all too long)",
            fix="raise training.preference.max_length or turn data.tokenization.truncation on",
        )
    return out
