"""classification: cross-entropy of a sequence-classification head, one unit per row (what sft trains as
on a classification model)."""

from __future__ import annotations

from llmft.config.objectives import INSTRUCTIONS
from llmft.train.loss import classification_loss
from llmft.train.objectives.base import Context, Objective, row_units
from llmft.train.objectives.instructions import collate, encode

NAME = "classification"
DATA = (INSTRUCTIONS,)
NEEDS_REFERENCE = False
__all__ = ["DATA", "NAME", "NEEDS_REFERENCE", "build", "collate", "encode"]


def build(ctx: Context) -> Objective:
    """Summed cross-entropy over the batch's rows."""
    return Objective(NAME, classification_loss, row_units)
