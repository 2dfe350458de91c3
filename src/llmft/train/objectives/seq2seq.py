"""seq2seq: the decoder's loss on every labelled target token (what sft trains as on an encoder-decoder)."""

from __future__ import annotations

from llmft.config.objectives import INSTRUCTIONS
from llmft.train.loss import seq2seq_loss
from llmft.train.objectives.base import Context, Objective, label_units
from llmft.train.objectives.instructions import collate, encode

NAME = "seq2seq"
DATA = (INSTRUCTIONS,)
NEEDS_REFERENCE = False
__all__ = ["DATA", "NAME", "NEEDS_REFERENCE", "build", "collate", "encode"]


def build(ctx: Context) -> Objective:
    """Summed cross-entropy over the labelled target tokens."""
    return Objective(NAME, seq2seq_loss, label_units)
