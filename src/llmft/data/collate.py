"""Batches: dynamic padding, and an order that groups similar lengths while staying seeded-random.

The order of batches is a pure function of (seed, epoch), so a resumed run can skip exactly the batches
it has already trained on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from llmft.data.labels import IGNORE


@dataclass
class PadCollator:
    """Pad a list of examples to the longest (rounded up to a multiple) or to a fixed length."""

    pad_id: int
    pad_to_multiple_of: int | None = 8
    fixed_length: int | None = None
    label_is_sequence: bool = True

    def _target_length(self, longest: int) -> int:
        if self.fixed_length is not None:
            return self.fixed_length
        m = self.pad_to_multiple_of
        return longest if not m else ((longest + m - 1) // m) * m

    def __call__(self, examples: list[dict[str, object]]) -> dict[str, torch.Tensor]:
        size = self._target_length(max(len(e["input_ids"]) for e in examples))  # type: ignore[arg-type]
        ids = torch.full((len(examples), size), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(examples), size), dtype=torch.long)
        for i, example in enumerate(examples):
            row = torch.as_tensor(example["input_ids"], dtype=torch.long)
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        if self.label_is_sequence:
            longest_label = max(len(e["labels"]) for e in examples)  # type: ignore[arg-type]
            label_size = (
                size if self.fixed_length or longest_label <= size else self._target_length(longest_label)
            )
            labels = torch.full((len(examples), label_size), IGNORE, dtype=torch.long)
            for i, example in enumerate(examples):
                row = torch.as_tensor(example["labels"], dtype=torch.long)
                labels[i, : len(row)] = row
            batch["labels"] = labels
        else:
            batch["labels"] = torch.as_tensor([e["labels"] for e in examples], dtype=torch.long)
        return batch


def example_length(example: dict[str, object]) -> int:
    """Tokens of an example, for length grouping: its ids, or a preference pair's longest sequence."""
    ids = example.get("input_ids")
    if ids is not None:
        return len(ids)  # type: ignore[arg-type]
    from llmft.data.pair_collate import example_length as pair_length

    return pair_length(example)


def batch_order(
    lengths: list[int],
    batch_size: int,
    seed: int,
    epoch: int,
    group_by_length: bool,
    shuffle: bool = True,
    rows: list[int] | None = None,
) -> list[list[int]]:
    """Indices of each batch for one epoch; ``rows``: the epoch's rows when not all (a data set mixture).

    Length grouping: shuffle, cut into mega-batches of 50 batches, sort each by length, cut into batches,
    then shuffle the batches. Similar lengths share a batch (little padding), the order stays random.
    """
    index = list(range(len(lengths))) if rows is None else list(rows)
    rng = random.Random(seed * 1_000_003 + epoch)
    if shuffle:
        rng.shuffle(index)
    if group_by_length and shuffle:
        mega = batch_size * 50
        grouped: list[int] = []
        for start in range(0, len(index), mega):
            grouped.extend(sorted(index[start : start + mega], key=lambda i: -lengths[i]))
        index = grouped
    batches = [index[i : i + batch_size] for i in range(0, len(index), batch_size)]
    if group_by_length and shuffle:
        rng.shuffle(batches)
    return batches


# ------------------------------------------------------------------------------------------ packing
def pack_examples(examples: list[dict[str, object]], max_length: int) -> list[dict[str, list[int]]]:
    """Pack rows into sequences of at most ``max_length`` tokens (first-fit decreasing).

    Each packed row keeps its rows' own labels, with the first token of every row masked (nothing inside
    the row predicts it; without the mask the previous row's last token would learn to predict it), and
    position_ids restarting at 0 for every row, from which transformers builds a block-diagonal causal
    mask: no token attends across a row boundary (attention_mask must then be left out, and no KV cache).
    """
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"]))  # type: ignore[arg-type]
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        size = len(examples[i]["input_ids"])  # type: ignore[arg-type]
        target = next((b for b, free in enumerate(room) if free >= size), None)
        if target is None:
            bins.append([i])
            room.append(max_length - size)
        else:
            bins[target].append(i)
            room[target] -= size
    return [_join([examples[i] for i in members]) for members in bins]


def _join(rows: list[dict[str, object]]) -> dict[str, list[int]]:
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for row in rows:
        row_ids = list(row["input_ids"])  # type: ignore[call-overload]
        row_labels = list(row["labels"])  # type: ignore[call-overload]
        row_labels[0] = IGNORE
        ids += row_ids
        labels += row_labels
        positions += list(range(len(row_ids)))
    return {"input_ids": ids, "labels": labels, "position_ids": positions}


@dataclass
class PackedCollator:
    """Batches of packed rows: padding is one more 'row' (positions from 0, labels ignored), so no
    attention mask is needed; ``token_mask`` marks real tokens for counting and is not a model input.

    Rows are padded to the longest pack in the batch (rounded up to ``pad_to_multiple_of``), at most
    ``length``: part-full packs (the last ones of an epoch) cost only their own tokens."""

    pad_id: int
    length: int
    pad_to_multiple_of: int | None = 8

    def _target_length(self, longest: int) -> int:
        m = self.pad_to_multiple_of
        return min(self.length, longest if not m else ((longest + m - 1) // m) * m)

    def __call__(self, examples: list[dict[str, object]]) -> dict[str, torch.Tensor]:
        n = len(examples)
        size = self._target_length(max(len(e["input_ids"]) for e in examples))  # type: ignore[arg-type]
        ids = torch.full((n, size), self.pad_id, dtype=torch.long)
        labels = torch.full((n, size), IGNORE, dtype=torch.long)
        positions = torch.arange(size, dtype=torch.long).repeat(n, 1)
        real = torch.zeros((n, size), dtype=torch.long)
        for i, example in enumerate(examples):
            used = len(example["input_ids"])  # type: ignore[arg-type]
            ids[i, :used] = torch.as_tensor(example["input_ids"])
            labels[i, :used] = torch.as_tensor(example["labels"])
            positions[i, :used] = torch.as_tensor(example["position_ids"])
            positions[i, used:] = torch.arange(size - used)
            real[i, :used] = 1
        return {"input_ids": ids, "labels": labels, "position_ids": positions, "token_mask": real}
