"""Batches of preference examples: chosen and rejected stacked into one batch of 2B rows (one forward).

Rows are prompt + completion, right-padded; ``labels`` carry the completion tokens only (IGNORE on the
prompt and padding), so the log-prob of a completion is the sum over its labelled next-token positions.
Reference log-probs cached on the examples (``preference.precompute_reference``) travel as ``ref_logps``.
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
class PairCollator:
    """Pairs → one batch: rows 0..B-1 are prompt + chosen, rows B..2B-1 prompt + rejected."""

    pad_id: int
    pad_to_multiple_of: int | None = 8

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        prompts = [list(e["prompt_ids"]) for e in examples] * 2  # type: ignore[call-overload]
        completions = [list(e["chosen_ids"]) for e in examples] + [list(e["rejected_ids"]) for e in examples]  # type: ignore[call-overload]
        batch = SequencePadder(self.pad_id, self.pad_to_multiple_of)(prompts, completions)
        if "ref_chosen_logps" in examples[0]:
            refs = [e["ref_chosen_logps"] for e in examples] + [e["ref_rejected_logps"] for e in examples]
            batch["ref_logps"] = torch.tensor(refs, dtype=torch.float32)
        return batch


@dataclass
class UnpairedCollator:
    """KTO rows → the judged sequences, the mismatched (KL) sequences, and each row's verdict."""

    pad_id: int
    pad_to_multiple_of: int | None = 8

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        pad = SequencePadder(self.pad_id, self.pad_to_multiple_of)
        prompts = [list(e["prompt_ids"]) for e in examples]  # type: ignore[call-overload]
        batch = pad(prompts, [list(e["completion_ids"]) for e in examples])  # type: ignore[call-overload]
        kl = pad(prompts, [list(e["kl_completion_ids"]) for e in examples])  # type: ignore[call-overload]
        batch.update({f"kl_{k}": v for k, v in kl.items()})
        batch["desirable"] = torch.tensor([bool(e["desirable"]) for e in examples], dtype=torch.bool)
        if "ref_logps" in examples[0]:
            batch["ref_logps"] = torch.tensor([e["ref_logps"] for e in examples], dtype=torch.float32)
            batch["ref_kl_logps"] = torch.tensor([e["ref_kl_logps"] for e in examples], dtype=torch.float32)
        return batch
