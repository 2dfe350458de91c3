"""simpo: SimPO (TRL's CPO trainer, loss_type simpo, cpo_alpha 0; under ``trl.experimental`` in TRL 1.x):
a reference-free margin between length-averaged log-probs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llmft.config.objectives import PAIRS
from llmft.train.objectives.base import Batch, Objective, Reference
from llmft.train.objectives.pairs import Settings, Tally, builder, encoder, pair_metrics, pair_objective
from llmft.train.objectives.pairs import collate_pairs as collate
from llmft.train.preference.logps import sequence_logps

NAME = "simpo"
DATA = (PAIRS,)
NEEDS_REFERENCE = False
__all__ = ["DATA", "NAME", "NEEDS_REFERENCE", "build", "collate", "encode", "objective"]


def simpo_losses(
    chosen_mean: torch.Tensor, rejected_mean: torch.Tensor, beta: float, gamma: float
) -> torch.Tensor:
    """−log σ(β (ā_chosen − ā_rejected − γ/β)): a margin γ/β between average log-probs, no reference."""
    return -F.logsigmoid(beta * (chosen_mean - rejected_mean - gamma / beta))


def objective(s: Settings, reference: Reference | None = None) -> Objective:
    """SimPO; metrics: the β-scaled average log-probs as rewards."""
    tally = Tally()

    def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        chosen, rejected = sequence_logps(model, batch).means.chunk(2)
        losses = simpo_losses(chosen, rejected, s.beta, s.gamma)
        tally.add(model, pair_metrics(s.beta * chosen, s.beta * rejected, chosen, rejected))
        return losses.sum(), losses.numel()

    return pair_objective(NAME, loss, tally)


encode = encoder(NAME)
build = builder(NAME, objective)
