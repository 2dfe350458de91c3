"""Reward models: a sequence-classification head with one output, trained with the Bradley–Terry loss
−log σ(r_chosen − r_rejected) on the stacked batch (rows 0..B-1 chosen, B..2B-1 rejected), as TRL's
RewardTrainer does."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rewards(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen rewards, rejected rewards), one scalar per row."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return out.logits.squeeze(-1).float().chunk(2)


def bradley_terry_losses(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    return -F.logsigmoid(chosen - rejected)
