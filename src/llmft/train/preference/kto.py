"""KTO (TRL 1.x's KTOTrainer, loss_type kto): unpaired completions judged desirable or not.

The reference point is a KL estimate from mismatched (prompt, completion) pairs of the same batch,
clamped at 0 and not differentiated; desirable and undesirable rows get their own weights.
"""

from __future__ import annotations

import torch


def kto_kl(kl_logratios: torch.Tensor) -> torch.Tensor:
    """The batch's KL estimate: mean log-ratio of the mismatched pairs, detached, at least 0."""
    return kl_logratios.mean().detach().clamp(min=0)


def kto_losses(
    logratios: torch.Tensor,
    desirable: torch.Tensor,
    kl: torch.Tensor,
    beta: float,
    weights: tuple[float, float] = (1.0, 1.0),
) -> torch.Tensor:
    """Per-row losses: 1 − σ(β(r − KL)) for desirable rows, 1 − σ(β(KL − r)) for undesirable ones, each times
    its weight (desirable_weight, undesirable_weight)."""
    chosen = weights[0] * (1 - torch.sigmoid(beta * (logratios - kl)))
    rejected = weights[1] * (1 - torch.sigmoid(beta * (kl - logratios)))
    return torch.where(desirable, chosen, rejected)


def weight_advice(desirable: int, undesirable: int, weights: tuple[float, float]) -> str | None:
    """A warning when the weights fall outside the KTO paper's recommended range for this balance (Eq. 8:
    λ_D·n_D / (λ_U·n_U) in [1, 4/3]), or None; the bounds are TRL's."""
    d, u = max(desirable, 1), max(undesirable, 1)
    if d == u:
        return None
    dw, uw = weights
    d_low, d_high = round(u * uw / d, 2), round(u * uw / d * 1.33, 2)
    u_low, u_high = round(d * dw / u / 1.33, 2), round(d * dw / u, 2)
    if d_low <= dw <= d_high or u_low <= uw <= u_high:
        return None
    return (
        f"kto: {desirable} desirable and {undesirable} undesirable rows, but desirable_weight {dw:g} / "
        f"undesirable_weight {uw:g} are outside the recommended range: set EITHER desirable_weight in "
        f"[{d_low}, {d_high}] OR undesirable_weight in [{u_low}, {u_high}] (training.preference)"
    )
