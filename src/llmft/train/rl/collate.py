"""Prompt + completion rows as one batch: prompts left-padded, completions right-padded after them, so
every completion starts at the same column and its log-probs are the last columns' (forward.py)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

Batch = dict[str, torch.Tensor]


def rollout_batch(
    prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int
) -> Batch:
    """``input_ids``, ``attention_mask``, ``position_ids`` (counting real tokens, as generation did) and
    ``completion_mask`` (rows × longest completion, at least 1 column)."""
    width_p = max(len(p) for p in prompts)
    width_c = max(1, max(len(c) for c in completions))
    rows = len(prompts)
    ids = torch.full((rows, width_p + width_c), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, width_p + width_c), dtype=torch.long)
    completion_mask = torch.zeros((rows, width_c), dtype=torch.float32)
    for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        start = width_p - len(prompt)
        ids[i, start:width_p] = torch.as_tensor(list(prompt), dtype=torch.long)
        ids[i, width_p : width_p + len(completion)] = torch.as_tensor(list(completion), dtype=torch.long)
        mask[i, start : width_p + len(completion)] = 1
        completion_mask[i, : len(completion)] = 1.0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "position_ids": positions,
        "completion_mask": completion_mask,
    }
