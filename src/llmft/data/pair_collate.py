"""Batches of preference examples: chosen and rejected stacked into one batch of 2B sequences (one forward).

Padded (the default): one row per sequence, prompt + completion, right-padded. Packed (``data.packing``):
the batch's sequences are documents laid end to end in as few rows as ``capacity`` allows (one row when
unbounded), ``position_ids`` restarting at 0 for each, so attention stays inside a document (per-document
SDPA, train/packed_attention.py, or transformers' block-diagonal mask) and no token is padding but the
≤ ``pad_to_multiple_of`` - 1 at a row's end. ``sequence_ids`` says which sequence each token belongs to
(-1: padding), ``sequence_lengths`` each sequence's length, in the padded layout's order (chosen then
rejected), so every per-sequence result comes back in the same order either way.

``labels`` carry the completion tokens only (IGNORE on the prompt and padding), so the log-prob of a
completion is the sum over its labelled next-token positions. Reference log-probs cached on the examples
(``preference.precompute_reference``) travel as ``ref_logps``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llmft.data.labels import IGNORE

Example = dict[str, object]


def example_length(example: Example) -> int:
    """Tokens of the longest sequence a pair (or unpaired row) puts through the model."""
    prompt = len(example["prompt_ids"])  # type: ignore[arg-type]
    keys = ("chosen_ids", "rejected_ids", "completion_ids", "kl_completion_ids")
    return prompt + max(len(example[k]) for k in keys if k in example)  # type: ignore[arg-type]


@dataclass
class SequencePadder:
    """Right-pads prompt + completion rows into input_ids, attention_mask and completion-only labels."""

    pad_id: int
    pad_to_multiple_of: int | None = 8

    def __call__(self, prompts: list[list[int]], completions: list[list[int]]) -> dict[str, torch.Tensor]:
        longest = max(len(p) + len(c) for p, c in zip(prompts, completions, strict=True))
        m = self.pad_to_multiple_of
        size = longest if not m else ((longest + m - 1) // m) * m
        n = len(prompts)
        ids = torch.full((n, size), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, size), dtype=torch.long)
        labels = torch.full((n, size), IGNORE, dtype=torch.long)
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            row = torch.as_tensor(prompt + completion, dtype=torch.long)
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
            labels[i, len(prompt) : len(row)] = row[len(prompt) :]
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@dataclass
class SequencePacker:
    """Packs prompt + completion sequences into rows of at most ``capacity`` tokens (first-fit decreasing;
    None: one row), each sequence its own document, in the layout the module docstring describes."""

    pad_id: int
    pad_to_multiple_of: int | None = 8
    capacity: int | None = None

    def _rows(self, lengths: list[int]) -> list[list[int]]:
        if self.capacity is None:
            return [list(range(len(lengths)))]
        rows: list[list[int]] = []
        room: list[int] = []
        for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
            target = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
            if target is None:
                rows.append([i])
                room.append(self.capacity - lengths[i])
            else:
                rows[target].append(i)
                room[target] -= lengths[i]
        return rows

    def __call__(self, prompts: list[list[int]], completions: list[list[int]]) -> dict[str, torch.Tensor]:
        lengths = [len(p) + len(c) for p, c in zip(prompts, completions, strict=True)]
        rows = self._rows(lengths)
        longest = max(sum(lengths[i] for i in row) for row in rows)
        m = self.pad_to_multiple_of
        size = longest if not m else ((longest + m - 1) // m) * m
        shape = (len(rows), size)
        ids = torch.full(shape, self.pad_id, dtype=torch.long)
        labels = torch.full(shape, IGNORE, dtype=torch.long)
        sequence = torch.full(shape, -1, dtype=torch.long)
        positions = torch.arange(size, dtype=torch.long).repeat(len(rows), 1)
        for r, members in enumerate(rows):
            at = 0
            for i in members:
                end = at + lengths[i]
                ids[r, at:end] = torch.as_tensor(prompts[i] + completions[i], dtype=torch.long)
                labels[r, at + len(prompts[i]) : end] = ids[r, at + len(prompts[i]) : end]
                labels[r, at] = IGNORE  # nothing in its own document predicts a sequence's first token
                sequence[r, at:end] = i
                positions[r, at:end] = torch.arange(lengths[i])
                at = end
            positions[r, at:] = torch.arange(size - at)  # the padding: one more document, never scored
        return {
            "input_ids": ids,
            "labels": labels,
            "position_ids": positions,
            "sequence_ids": sequence,
            "sequence_lengths": torch.tensor(lengths, dtype=torch.long),
            "token_mask": (sequence >= 0).long(),
        }


def sequence_layout(
    pad_id: int, pad_to_multiple_of: int | None, packed: bool, capacity: int | None
) -> SequencePadder | SequencePacker:
    """The padded or the packed layout of a batch's sequences."""
    if packed:
        return SequencePacker(pad_id, pad_to_multiple_of, capacity)
    return SequencePadder(pad_id, pad_to_multiple_of)


def sequence_count(batch: dict[str, torch.Tensor]) -> int:
    """Sequences in a batch of either layout (rows when padded)."""
    lengths = batch.get("sequence_lengths")
    return int(lengths.numel()) if lengths is not None else int(batch["input_ids"].shape[0])


@dataclass
class PairCollator:
    """Pairs → one batch: sequences 0..B-1 are prompt + chosen, B..2B-1 prompt + rejected (``packed``:
    laid out as documents in rows of at most ``capacity`` tokens, see the module docstring)."""

    pad_id: int
    pad_to_multiple_of: int | None = 8
    packed: bool = False
    capacity: int | None = None

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        prompts = [list(e["prompt_ids"]) for e in examples] * 2  # type: ignore[call-overload]
        completions = [list(e["chosen_ids"]) for e in examples] + [list(e["rejected_ids"]) for e in examples]  # type: ignore[call-overload]
        layout = sequence_layout(self.pad_id, self.pad_to_multiple_of, self.packed, self.capacity)
        batch = layout(prompts, completions)
        if "ref_chosen_logps" in examples[0]:
            refs = [e["ref_chosen_logps"] for e in examples] + [e["ref_rejected_logps"] for e in examples]
            batch["ref_logps"] = torch.tensor(refs, dtype=torch.float32)
        return batch


@dataclass
class UnpairedCollator:
    """KTO rows → the judged sequences, the mismatched (KL) sequences, and each row's verdict (``packed``:
    each of the two sets laid out as documents, see the module docstring)."""

    pad_id: int
    pad_to_multiple_of: int | None = 8
    packed: bool = False
    capacity: int | None = None

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        pad = sequence_layout(self.pad_id, self.pad_to_multiple_of, self.packed, self.capacity)
        prompts = [list(e["prompt_ids"]) for e in examples]  # type: ignore[call-overload]
        batch = pad(prompts, [list(e["completion_ids"]) for e in examples])  # type: ignore[call-overload]
        kl = pad(prompts, [list(e["kl_completion_ids"]) for e in examples])  # type: ignore[call-overload]
        batch.update({f"kl_{k}": v for k, v in kl.items()})
        batch["desirable"] = torch.tensor([bool(e["desirable"]) for e in examples], dtype=torch.bool)
        if "ref_logps" in examples[0]:
            batch["ref_logps"] = torch.tensor([e["ref_logps"] for e in examples], dtype=torch.float32)
            batch["ref_kl_logps"] = torch.tensor([e["ref_kl_logps"] for e in examples], dtype=torch.float32)
        return batch
