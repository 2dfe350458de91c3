"""dpo: DPO and its loss types, as in TRL 1.x's DPOTrainer (reverse-KL scores, one loss type at a time),
on per-pair log-ratios log π(y|x) − log π_ref(y|x) summed over the completion tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llmft.config.objectives import PAIRS
from llmft.train.objectives import pairs as shared
from llmft.train.objectives.base import Batch, Objective, Reference
from llmft.train.objectives.pairs import collate_pairs as collate
from llmft.train.preference.logps import sequence_logps

NAME = "dpo"
DATA = (PAIRS,)
NEEDS_REFERENCE = True
LOSS_TYPES = ("sigmoid", "robust", "ipo", "hinge")
__all__ = ["DATA", "NAME", "NEEDS_REFERENCE", "build", "collate", "encode", "objective"]


def dpo_losses(
    chosen_logratios: torch.Tensor,
    rejected_logratios: torch.Tensor,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    lengths: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per-pair losses.

    sigmoid: −log σ(βΔ); robust: (−(1−ε) log σ(βΔ) + ε log σ(−βΔ)) / (1−2ε); hinge: relu(1 − βΔ);
    ipo: (Δ̄ − 1/(2β))² on log-ratios divided by each completion's token count (``lengths``), as TRL does
    (the IPO authors' normalisation), so β means the same for short and long answers.
    """
    delta = chosen_logratios - rejected_logratios
    if loss_type == "sigmoid":
        return -F.logsigmoid(beta * delta)
    if loss_type == "robust":
        clean = -(1 - label_smoothing) * F.logsigmoid(beta * delta)
        flipped = -label_smoothing * F.logsigmoid(-beta * delta)
        return (clean - flipped) / (1 - 2 * label_smoothing)
    if loss_type == "hinge":
        return torch.relu(1 - beta * delta)
    if loss_type == "ipo":
        if lengths is None:
            raise ValueError("ipo needs the completion lengths")
        chosen_len, rejected_len = (n.clamp(min=1) for n in lengths)
        ipo_delta = chosen_logratios / chosen_len - rejected_logratios / rejected_len
        return (ipo_delta - 1 / (2 * beta)) ** 2
    raise ValueError(f"unknown DPO loss type {loss_type!r} (expected one of {', '.join(LOSS_TYPES)})")


def objective(s: shared.Settings, reference: Reference | None = None) -> Objective:
    """DPO against ``reference`` (unless batches carry ref_logps); metrics: the β-scaled log-ratios."""
    tally = shared.Tally()

    def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        logps = sequence_logps(model, batch)
        ref = shared.reference_logps(model, batch, reference, batch.get("ref_logps"))
        chosen, rejected = logps.sums.chunk(2)
        ref_chosen, ref_rejected = ref.to(chosen.dtype).chunk(2)
        chosen_ratio, rejected_ratio = chosen - ref_chosen, rejected - ref_rejected
        losses = dpo_losses(
            chosen_ratio, rejected_ratio, s.beta, s.loss_type, s.label_smoothing, logps.counts.chunk(2)
        )
        rewards = (s.beta * chosen_ratio, s.beta * rejected_ratio)
        tally.add(model, shared.pair_metrics(*rewards, chosen, rejected))
        return losses.sum(), losses.numel()

    return shared.pair_objective(NAME, loss, tally)


encode = shared.encoder(NAME)
build = shared.builder(NAME, objective)
