"""rloo: REINFORCE leave-one-out (Ahmadian et al., 2024) on rollouts of the data's prompts, the KL to the
reference in the reward; objectives/online.py holds what it shares with grpo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.config.objectives import INSTRUCTIONS, PROMPTS
from llmft.train.objectives import online
from llmft.train.objectives.base import Context, Objective
from llmft.train.objectives.instructions import collate

if TYPE_CHECKING:
    from llmft.train.batches import FixedBatches
    from llmft.train.rl.rollouts import RolloutSource

NAME = "rloo"
DATA = (PROMPTS, INSTRUCTIONS)
NEEDS_REFERENCE = False  # the rollout source takes the reference's log-probs when beta > 0
encode = online.encode
updates_per_window = online.updates_per_window
__all__ = [
    "DATA",
    "NAME",
    "NEEDS_REFERENCE",
    "batch_source",
    "build",
    "collate",
    "encode",
    "updates_per_window",
]


def build(ctx: Context) -> Objective:
    return online.build(ctx, NAME)


def batch_source(ctx: Context, fixed: FixedBatches) -> RolloutSource:
    return online.batch_source(ctx, fixed, NAME)
