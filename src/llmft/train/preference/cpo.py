"""Reference-free pair losses on length-averaged log-probs: SimPO (TRL's CPO trainer, loss_type simpo,
cpo_alpha 0) and ORPO (TRL's ORPO trainer); both live under ``trl.experimental`` in TRL 1.x."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def simpo_losses(
    chosen_mean: torch.Tensor, rejected_mean: torch.Tensor, beta: float, gamma: float
) -> torch.Tensor:
    """−log σ(β (ā_chosen − ā_rejected − γ/β)): a margin γ/β between average log-probs, no reference."""
    return -F.logsigmoid(beta * (chosen_mean - rejected_mean - gamma / beta))


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(x)) for x < 0, stable on both sides of −ln 2."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def orpo_log_odds(chosen_mean: torch.Tensor, rejected_mean: torch.Tensor) -> torch.Tensor:
    """log odds(chosen) − log odds(rejected), with odds(y) = p / (1 − p) on average log-probs p."""
    chosen_mean, rejected_mean = chosen_mean.float(), rejected_mean.float()
    return (chosen_mean - rejected_mean) - (log1mexp(chosen_mean) - log1mexp(rejected_mean))


def orpo_ratio_terms(chosen_mean: torch.Tensor, rejected_mean: torch.Tensor) -> torch.Tensor:
    """log σ(log-odds ratio) per pair; ORPO's loss is NLL(chosen) − β · mean of these."""
    return F.logsigmoid(orpo_log_odds(chosen_mean, rejected_mean))
