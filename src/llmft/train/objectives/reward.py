"""reward: a reward model, a sequence-classification head with one output, trained with the Bradley–Terry
loss −log σ(r_chosen − r_rejected) on the stacked batch (rows 0..B-1 chosen, B..2B-1 rejected), as TRL's
RewardTrainer does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from llmft.config.objectives import PAIRS
from llmft.train.objectives.base import Batch, Objective, Reference
from llmft.train.objectives.pairs import Settings, Tally, builder, pair_objective
from llmft.train.objectives.pairs import collate_pairs as collate
from llmft.train.objectives.pairs import encode as encode_pairs

if TYPE_CHECKING:
    from llmft.config.schema import DataConfig, PreferenceConfig
    from llmft.data.build import EncodedData, PreparedData

NAME = "reward"
DATA = (PAIRS,)
NEEDS_REFERENCE = False
__all__ = ["DATA", "NAME", "NEEDS_REFERENCE", "build", "collate", "encode", "objective"]


def rewards(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen rewards, rejected rewards), one scalar per row."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return out.logits.squeeze(-1).float().chunk(2)


def bradley_terry_losses(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    return -F.logsigmoid(chosen - rejected)


def encode(
    prepared: PreparedData, data: DataConfig, preference: PreferenceConfig, tokenizer: object, task: str
) -> EncodedData:
    """Pairs, with the head's one label named `reward`."""
    encoded = encode_pairs(NAME, prepared, data, preference, tokenizer)
    encoded.label_names = ["reward"]
    return encoded


def objective(s: Settings, reference: Reference | None = None) -> Objective:
    """Bradley–Terry; metrics: how often and by how much the chosen row scores higher."""
    tally = Tally()

    def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        chosen, rejected = rewards(model, batch)
        losses = bradley_terry_losses(chosen, rejected)
        n = chosen.numel()
        tally.add(
            model,
            {
                "accuracy": ((chosen > rejected).float().sum(), n),
                "margin": ((chosen - rejected).sum(), n),
                "mean_reward": ((chosen.sum() + rejected.sum()) / 2, n),
            },
        )
        return losses.sum(), n

    return pair_objective(NAME, loss, tally)


build = builder(NAME, objective)
