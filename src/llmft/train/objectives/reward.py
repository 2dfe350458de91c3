"""reward: a reward model, a sequence-classification head with one output, trained with the Bradley–Terry
loss −log σ(r_chosen − r_rejected) on the stacked batch (rows 0..B-1 chosen, B..2B-1 rejected), as TRL's
RewardTrainer does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from llmft.config.objectives import PAIRS
from llmft.train.loss import _unwrap, supports_selective_head
from llmft.train.objectives.base import Batch, Objective, Reference
from llmft.train.objectives.pairs import Settings, Tally, builder, pair_objective
from llmft.train.objectives.pairs import collate_pairs as collate
from llmft.train.objectives.pairs import encode as encode_pairs
from llmft.train.preference.logps import model_inputs

if TYPE_CHECKING:
    from llmft.config.schema import DataConfig, PreferenceConfig
    from llmft.data.build import EncodedData, PreparedData

NAME = "reward"
DATA = (PAIRS,)
NEEDS_REFERENCE = False
__all__ = ["DATA", "NAME", "NEEDS_REFERENCE", "build", "can_pack", "collate", "encode", "objective"]


def rewards(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen rewards, rejected rewards), one scalar per sequence."""
    if "sequence_ids" in batch:
        return packed_scores(model, batch).float().chunk(2)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return out.logits.squeeze(-1).float().chunk(2)


def _scored_positions(batch: Batch, pad_id: int | None) -> torch.Tensor:
    """Flat index of the token each packed sequence is scored at: its last token that is not the pad id,
    the one a sequence-classification model's own forward picks in a padded row (its first token when
    every token is the pad id, as there)."""
    owner, ids = batch["sequence_ids"].flatten(), batch["input_ids"].flatten()
    index = torch.arange(owner.numel(), device=owner.device)
    n = int(batch["sequence_lengths"].numel())
    real = owner >= 0
    first = torch.full((n,), owner.numel(), device=owner.device).scatter_reduce(
        0, owner[real], index[real], "amin"
    )
    content = real & (ids != pad_id) if pad_id is not None else real
    last = torch.full((n,), -1, device=owner.device).scatter_reduce(0, owner[content], index[content], "amax")
    return torch.where(last >= 0, last, first)


def packed_scores(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The score head at each packed sequence's scored token: the backbone over the packed rows, the
    head only where it is read."""
    inner = _unwrap(model)
    hidden = inner.base_model(**model_inputs(batch), use_cache=False).last_hidden_state  # type: ignore[operator]
    at = _scored_positions(batch, getattr(inner.config, "pad_token_id", None))
    return inner.score(hidden.flatten(0, 1)[at]).squeeze(-1)  # type: ignore[operator]


def can_pack(model: torch.nn.Module) -> bool:
    """Packed reward batches need an architecture that keeps packed documents apart and a backbone and
    ``score`` head the forward can be split into (every PLAIN_HEAD_TYPES model; no prompt learning)."""
    inner = _unwrap(model)
    return supports_selective_head(model) and hasattr(inner, "score") and inner.base_model is not inner


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
