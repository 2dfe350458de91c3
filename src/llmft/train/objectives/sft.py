"""sft: next-token loss on the labelled (completion) tokens of a causal language model."""

from __future__ import annotations

from llmft.config.objectives import INSTRUCTIONS, PAIRS
from llmft.train.loss import full_lm_loss, selective_lm_loss, supports_selective_head
from llmft.train.objectives.base import Context, Objective, next_token_units
from llmft.train.objectives.instructions import collate, encode

NAME = "sft"
DATA = (INSTRUCTIONS, PAIRS)
NEEDS_REFERENCE = False
__all__ = ["DATA", "NAME", "NEEDS_REFERENCE", "build", "collate", "encode"]


def build(ctx: Context) -> Objective:
    """The fastest correct loss for the model: the LM head only at labelled positions where it can."""
    loss = selective_lm_loss if supports_selective_head(ctx.model) else full_lm_loss
    return Objective("causal_lm", loss, next_token_units)
