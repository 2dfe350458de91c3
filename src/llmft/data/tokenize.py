"""Canonical rows → token ids and labels (the loss mask), per task.

Causal LM: conversation segments are tokenized one by one and concatenated, so labels are -100 exactly on
the untrained segments; plain text is split into ``max_length`` chunks (nothing is thrown away).
Classification: ids + integer label. Seq2seq: source ids + target ids as labels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from llmft.config.schema import PreprocessingConfig, TokenizationConfig
from llmft.data.labels import IGNORE
from llmft.data.templates import Template, train_all
from llmft.errors import DataError


@dataclass
class TokenStats:
    """Token counts of one split, for the run's report and `llmft preview`."""

    rows: int = 0
    truncated: int = 0
    dropped_too_long: int = 0
    lengths: list[int] = field(default_factory=list)
    trained_tokens: int = 0

    def percentiles(self) -> dict[str, int]:
        if not self.lengths:
            return {}
        ordered = sorted(self.lengths)
        pick = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
        return {k: ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))] for k, q in pick.items()}

    def to_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "truncated": self.truncated,
            "dropped_too_long": self.dropped_too_long,
            "trained_tokens": self.trained_tokens,
            "length_percentiles": self.percentiles(),
            "length_histogram": self.histogram(),
        }

    def histogram(self, bins: int = 20) -> dict[str, list[int]]:
        """Token lengths in ``bins`` equal-width bins: ``edges`` (bins + 1 of them) and ``counts``."""
        if not self.lengths:
            return {"edges": [], "counts": []}
        low, high = min(self.lengths), max(self.lengths)
        width = max(1, -(-(high - low + 1) // bins))  # ceil: integer edges that cover the maximum
        counts = [0] * bins
        for length in self.lengths:
            counts[min(bins - 1, (length - low) // width)] += 1
        used = max(i for i, c in enumerate(counts) if c) + 1
        return {"edges": [low + i * width for i in range(used + 1)], "counts": counts[:used]}


def special_ids(tokenizer: object) -> tuple[list[int], list[int]]:
    """Ids the tokenizer puts before and after text on its own (Llama's BOS; BERT's [SEP], T5's </s>)."""
    with_special = tokenizer("a")["input_ids"]  # type: ignore[operator]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    for start in range(len(with_special)):
        if with_special[start : start + len(plain)] == plain:
            return list(with_special[:start]), list(with_special[start + len(plain) :])
    return [], []


def leading_special_ids(tokenizer: object) -> list[int]:
    """Ids the tokenizer puts before text on its own (e.g. Llama's BOS), which segment-wise encoding skips."""
    return special_ids(tokenizer)[0]


def encode_conversation(
    messages: list[dict[str, object]],
    tokenizer: object,
    template: Template,
    train_on_inputs: bool,
    tools: list[object] | None = None,
) -> tuple[list[int], list[int]]:
    """Token ids and labels of one conversation (offered ``tools``); labels are IGNORE outside trained
    segments."""
    segments = template.segments(messages, tools)
    if train_on_inputs:
        segments = train_all(segments)
    ids: list[int] = []
    labels: list[int] = []
    prefix = leading_special_ids(tokenizer)
    first_text = segments[0].text if segments else ""
    bos = getattr(tokenizer, "bos_token", None)
    if prefix and not (bos and first_text.startswith(str(bos))):
        ids.extend(prefix)
        labels.extend([IGNORE] * len(prefix))
    for segment in segments:
        piece = tokenizer(segment.text, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        ids.extend(piece)
        labels.extend(piece if segment.trainable else [IGNORE] * len(piece))
    return ids, labels


def encode_text(text: str, tokenizer: object, cfg: TokenizationConfig) -> list[list[int]]:
    """A plain-text row as one or more chunks of at most max_length tokens (with EOS at the end)."""
    ids = list(tokenizer(text)["input_ids"])  # type: ignore[operator]
    eos = getattr(tokenizer, "eos_token_id", None)
    if cfg.add_eos and eos is not None and (not ids or ids[-1] != eos):
        ids.append(int(eos))
    size = cfg.max_length
    return [ids[i : i + size] for i in range(0, len(ids), size)] or [[]]


@dataclass
class Encoder:
    """Everything needed to turn canonical rows of one task into model inputs."""

    task: str
    tokenizer: object
    tokenization: TokenizationConfig
    preprocessing: PreprocessingConfig
    template: Template | None = None
    label_to_id: dict[str, int] | None = None

    def encode(self, row: dict[str, object]) -> list[dict[str, object]]:
        """One canonical row → zero or more examples ({input_ids, labels})."""
        # Not truncated here: fit_length truncates (or drops) and counts, for every task alike.
        if self.task == "sequence_classification":
            ids = self.tokenizer(row["text"])["input_ids"]  # type: ignore[operator]
            return [{"input_ids": list(ids), "labels": self._label(row["label"])}]
        if self.task == "seq2seq_lm":
            ids = self.tokenizer(self._source_text(row))["input_ids"]  # type: ignore[operator]
            target = self.tokenizer(text_target=self._target_text(row))["input_ids"]  # type: ignore[operator]
            return [{"input_ids": list(ids), "labels": list(target)}]
        if "messages" in row:
            assert self.template is not None
            ids, labels = encode_conversation(
                row["messages"],
                self.tokenizer,
                self.template,
                self.preprocessing.train_on_inputs,  # type: ignore[arg-type]
                row.get("tools"),  # type: ignore[arg-type]
            )
            return [{"input_ids": ids, "labels": labels}]
        chunks = encode_text(str(row["text"]), self.tokenizer, self.tokenization)
        return [{"input_ids": c, "labels": list(c)} for c in chunks]

    def closing_ids(self) -> list[int]:
        """Ids that truncation keeps at the end: the tokenizer's own ([SEP], </s>), except for causal LM,
        where a cut-off answer must not look finished."""
        return [] if self.task == "causal_lm" else special_ids(self.tokenizer)[1]

    def _label(self, label: object) -> int:
        assert self.label_to_id is not None
        if str(label) not in self.label_to_id:
            raise DataError(
                f"label {label!r} is not among the labels: {', '.join(self.label_to_id)}",
                fix="list every class in data.preprocessing.label_names, or fix the row",
            )
        return self.label_to_id[str(label)]

    @staticmethod
    def _source_text(row: dict[str, object]) -> str:
        if "messages" in row:
            return "\n".join(m["content"] for m in row["messages"] if m["role"] != "assistant")  # type: ignore[union-attr]
        return str(row.get("input", row.get("text", "")))

    @staticmethod
    def _target_text(row: dict[str, object]) -> str:
        if "messages" in row:
            return next(m["content"] for m in reversed(row["messages"]) if m["role"] == "assistant")  # type: ignore[union-attr]
        return str(row.get("target", row.get("text", "")))


def fit_length(
    example: dict[str, object], cfg: TokenizationConfig, stats: Counter[str], closing: list[int] | None = None
) -> dict[str, object] | None:
    """Truncate (or drop, when truncation is off) an example whose ids or label sequence pass max_length.

    ``closing`` ids (the tokenizer's [SEP] or </s>) stay at the end of a truncated sequence, as they do
    with the tokenizer's own truncation.
    """
    ids, labels = example["input_ids"], example["labels"]
    sequences = [ids, labels] if isinstance(labels, list) else [ids]
    if all(len(s) <= cfg.max_length for s in sequences):  # type: ignore[arg-type]
        return example
    if not cfg.truncation:
        stats["dropped_too_long"] += 1
        return None
    stats["truncated"] += 1
    out = dict(example)
    out["input_ids"] = _cut(ids, cfg.max_length, closing or [])  # type: ignore[arg-type]
    if isinstance(labels, list):
        out["labels"] = _cut(labels, cfg.max_length, closing or [])
    return out


def _cut(seq: list[int], limit: int, closing: list[int]) -> list[int]:
    if len(seq) <= limit:
        return seq
    if closing and len(closing) < limit and seq[-len(closing) :] == closing:
        return seq[: limit - len(closing)] + closing
    return seq[:limit]


def encode_rows(
    rows: list[dict[str, object]], encoder: Encoder
) -> tuple[list[dict[str, object]], TokenStats]:
    """Encode rows; drop examples with nothing to learn (every label masked after truncation)."""
    counts: Counter[str] = Counter()
    stats = TokenStats()
    out: list[dict[str, object]] = []
    closing = encoder.closing_ids()
    for row in rows:
        for example in encoder.encode(row):
            fitted = fit_length(example, encoder.tokenization, counts, closing)
            if fitted is None or not fitted["input_ids"]:
                continue
            labels = fitted["labels"]
            if isinstance(labels, list):
                trained = sum(1 for t in labels if t != IGNORE)
                if not trained:
                    counts["no_trained_tokens"] += 1
                    continue
                stats.trained_tokens += trained
            stats.lengths.append(len(fitted["input_ids"]))  # type: ignore[arg-type]
            out.append(fitted)
    stats.rows = len(out)
    stats.truncated = counts["truncated"]
    stats.dropped_too_long = counts["dropped_too_long"] + counts["no_trained_tokens"]
    return out, stats
