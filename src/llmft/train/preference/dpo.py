"""DPO and its loss types, as in TRL 1.x's DPOTrainer (reverse-KL scores, one loss type at a time).

Inputs are per-pair log-ratios log π(y|x) − log π_ref(y|x), summed over the completion tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_TYPES = ("sigmoid", "robust", "ipo", "hinge")


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
