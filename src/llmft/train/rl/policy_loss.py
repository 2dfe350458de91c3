"""The clipped policy-gradient loss of GRPO and its variants, and RLOO's, from log-probs already computed.

One function per objective (``grpo_loss``, ``rloo_loss``), each equal to TRL 1.16's trainer for the same
inputs (tests/unit/train/rl/ call TRL's own methods). The loss returned is TRL's ``policy_loss``: one
micro-batch's loss before the division by gradient-accumulation steps that grpo, bnpo and dr_grpo then get
(dapo's ``num_items`` already spans the accumulation window); the training loop owns that division.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
SamplingLevel = Literal["token", "sequence"]


@dataclass(frozen=True)
class PolicySettings:
    """The loss's settings, with TRL 1.16's GRPOConfig defaults. ``epsilon_high`` None means ``epsilon``
    (symmetric PPO clipping); a larger one is DAPO's clip-higher. ``max_completion_length``: dr_grpo's
    constant divisor."""

    loss_type: LossType = "dapo"
    importance_sampling_level: SamplingLevel = "token"
    epsilon: float = 0.2
    epsilon_high: float | None = None
    beta: float = 0.0
    max_completion_length: int | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        """The ratio's clip range [1 - epsilon, 1 + epsilon_high]."""
        return 1 - self.epsilon, 1 + (self.epsilon if self.epsilon_high is None else self.epsilon_high)


@dataclass
class PolicyBatch:
    """One micro-batch of scored completions (rows × completion tokens). ``logps``: the policy's now (with
    grad); ``old_logps``: the sampling policy's (None: the same policy, one update per generation, so the
    ratio is 1 with the policy's gradient); ``ref_logps``: the reference's, needed when beta > 0;
    ``advantages``: per row (or per token); ``num_items``: dapo's divisor, the completion tokens of the
    whole accumulated batch over all processes divided by the number of processes (default: this mask's)."""

    logps: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor
    old_logps: torch.Tensor | None = None
    ref_logps: torch.Tensor | None = None
    num_items: torch.Tensor | float | None = None


@dataclass
class PolicyLoss:
    """The loss to backpropagate and what to log of it (TRL's metric names)."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token KL(policy || reference) by Schulman's k3 estimator, exp(r) - r - 1 with r = ref - policy:
    unbiased, and never negative, unlike the plain log-ratio (GRPO paper, eq. 4)."""
    log_ratio = ref_logps - logps
    return torch.exp(log_ratio) - log_ratio - 1


def log_importance_weights(batch: PolicyBatch, level: SamplingLevel) -> torch.Tensor:
    """log(pi / pi_old) per token (rows × tokens), or, for ``sequence`` (GSPO; Zheng et al., 2025), its
    mean over the completion's tokens (rows × 1): one length-normalised ratio per sequence."""
    old = batch.logps.detach() if batch.old_logps is None else batch.old_logps
    log_ratio = batch.logps - old
    if level == "token":
        return log_ratio
    if level == "sequence":
        mask = batch.mask
        return ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    raise ValueError(f"importance_sampling_level must be token or sequence, got {level!r}")


def _aggregate(per_token: torch.Tensor, batch: PolicyBatch, settings: PolicySettings) -> torch.Tensor:
    """Token losses → one number. grpo: mean per sequence, then over sequences (favours short answers
    with positive advantage); bnpo: mean over this micro-batch's tokens; dr_grpo: sum over a constant
    rows × max_completion_length (Dr. GRPO, Liu et al., 2025); dapo: sum over the accumulated batch's tokens
    (DAPO, Yu et al., 2025), so every token weighs the same however the batch is split."""
    mask = batch.mask
    masked = per_token * mask
    if settings.loss_type == "grpo":
        return (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if settings.loss_type == "bnpo":
        return masked.sum() / mask.sum().clamp(min=1.0)
    if settings.loss_type == "dr_grpo":
        if settings.max_completion_length is None:
            raise ValueError("loss_type dr_grpo needs max_completion_length")
        return masked.sum() / (per_token.size(0) * settings.max_completion_length)
    if settings.loss_type == "dapo":
        items = mask.sum() if batch.num_items is None else batch.num_items
        return masked.sum() / torch.as_tensor(items, dtype=masked.dtype, device=masked.device).clamp(min=1.0)
    raise ValueError(f"loss_type must be grpo, bnpo, dr_grpo or dapo, got {settings.loss_type!r}")


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean over the completion tokens, or over rows for one value per sequence (x: rows × 1)."""
    if x.shape[1] == 1:
        return float(x.sum() / max(x.shape[0], 1))
    return float((x * mask).sum() / mask.sum().clamp(min=1.0))


def _per_row(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One value per row: itself (rows × 1), or its mean over the row's tokens (NaN for an empty row)."""
    return x.squeeze(1) if x.shape[1] == 1 else (x * mask).sum(-1) / mask.sum(-1)


def _nan_extreme(x: torch.Tensor, largest: bool) -> float:
    """The largest (or smallest) value that is not NaN; NaN when there is none."""
    kept = x[~torch.isnan(x)]
    if kept.numel() == 0:
        return float("nan")
    return float(kept.max() if largest else kept.min())


def clip_metrics(
    ratio: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, bounds: tuple[float, float]
) -> dict[str, float]:
    """How often the clip bites, as TRL logs it: a ratio below 1 - epsilon with a negative advantage (low),
    above 1 + epsilon_high with a positive one (high), either (region); the means over tokens (or rows),
    and the smallest per-row low / largest per-row high share, ignoring empty rows."""
    low = ((ratio < bounds[0]) & (advantages < 0)).to(ratio.dtype)
    high = ((ratio > bounds[1]) & (advantages > 0)).to(ratio.dtype)
    region = torch.maximum(low, high)
    return {
        "clip_ratio/low_mean": _masked_mean(low, mask),
        "clip_ratio/high_mean": _masked_mean(high, mask),
        "clip_ratio/region_mean": _masked_mean(region, mask),
        "clip_ratio/low_min": _nan_extreme(_per_row(low, mask), largest=False),
        "clip_ratio/high_max": _nan_extreme(_per_row(high, mask), largest=True),
    }


def grpo_loss(batch: PolicyBatch, settings: PolicySettings) -> PolicyLoss:
    """GRPO's clipped surrogate (Shao et al., 2024) per token, -min(w·A, clip(w, 1-eps, 1+eps_high)·A),
    plus beta times the k3 KL to the reference, weighted by the same importance ratio (TRL 1.16's
    default ``use_bias_correction_kl``: the tokens were sampled from the old policy), then aggregated by
    ``loss_type``. Equal to TRL 1.16's ``GRPOTrainer._compute_loss`` for these loss types."""
    advantages = batch.advantages.unsqueeze(1) if batch.advantages.dim() == 1 else batch.advantages
    ratio = torch.exp(log_importance_weights(batch, settings.importance_sampling_level))
    low, high = settings.bounds
    per_token = -torch.min(ratio * advantages, torch.clamp(ratio, low, high) * advantages)
    metrics: dict[str, float] = {}
    if settings.beta != 0.0:
        if batch.ref_logps is None:
            raise ValueError("beta > 0 needs the reference log-probs (ref_logps)")
        kl = k3_kl(batch.logps, batch.ref_logps) * ratio
        per_token = per_token + settings.beta * kl
        metrics["kl"] = _masked_mean(kl.detach(), batch.mask)
    loss = _aggregate(per_token, batch, settings)
    metrics.update(clip_metrics(ratio.detach(), advantages, batch.mask, (low, high)))
    return PolicyLoss(loss, metrics)


def rloo_loss(batch: PolicyBatch, old_sequence_logps: torch.Tensor, settings: PolicySettings) -> PolicyLoss:
    """RLOO's loss as TRL 1.16's ``RLOOTrainer`` has it: one importance ratio per sequence from the summed
    token log-probs, PPO-clipped with [1 - epsilon, 1 + epsilon_high], -min(w·A, clip(w)·A) averaged over
    sequences. The KL is already in the reward (advantages.rloo_kl_penalised), so beta is not read here."""
    sequence_logps = (batch.logps * batch.mask).sum(1)
    ratio = torch.exp(sequence_logps - old_sequence_logps)
    low, high = settings.bounds
    advantages = batch.advantages
    loss = -torch.min(ratio * advantages, torch.clamp(ratio, low, high) * advantages).mean()
    rows = ratio.detach().unsqueeze(1)
    return PolicyLoss(loss, clip_metrics(rows, advantages.unsqueeze(1), batch.mask, (low, high)))
