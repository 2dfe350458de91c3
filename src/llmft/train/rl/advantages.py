"""Advantages from rewards: GRPO's group-relative ones and RLOO's leave-one-out ones.

The completions of one prompt are ``num_generations`` consecutive rows. A reward of NaN marks a completion
no reward function could score (each returned None): it is left out of its group's statistics and gets
advantage 0, as in TRL 1.16, so it neither moves the policy nor shifts its siblings' baseline.
"""

from __future__ import annotations

from typing import Literal

import torch

ScaleRewards = Literal["group", "batch", "none"]
STD_EPS = 1e-4  # added to the std before dividing, so a group of equal rewards gives 0, not 0/0 (TRL's value)


def nanstd(values: torch.Tensor, dim: int | None = None, keepdim: bool = False) -> torch.Tensor:
    """Sample standard deviation (Bessel's n-1) ignoring NaNs; NaN where fewer than two values remain."""
    mean = torch.nanmean(values, dim=dim, keepdim=True)
    squares = torch.nanmean((values - mean) ** 2, dim=dim, keepdim=True)
    count = (~torch.isnan(values)).sum(dim=dim, keepdim=True)
    bessel = torch.where(count > 1, count / (count - 1), torch.full_like(squares, float("nan")))
    std = torch.sqrt(squares * bessel)
    if keepdim:
        return std
    return std.squeeze() if dim is None else std.squeeze(dim)


def combine_rewards(per_function: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """One reward per completion (rows × functions → rows): the weighted sum of the functions that scored
    it (NaN = not scored, left out), NaN where none did. TRL's ``sum_then_normalize``."""
    unscored = torch.isnan(per_function).all(dim=1)
    total = (per_function * weights.to(per_function).unsqueeze(0)).nansum(dim=1)
    return total.masked_fill(unscored, float("nan"))


def group_advantages(
    rewards: torch.Tensor, num_generations: int, scale: ScaleRewards = "group"
) -> torch.Tensor:
    """GRPO's advantage (Shao et al., 2024, DeepSeekMath): each reward minus its group's mean, divided by
    the std of its group (``group``), of the whole batch (``batch``, PPO-Lite; Liu et al., 2025), or not at
    all (``none``, Dr. GRPO: dividing by a group's std up-weights prompts that are too easy or too hard)."""
    grouped = rewards.view(-1, num_generations)
    mean = torch.nanmean(grouped, dim=1).repeat_interleave(num_generations)
    advantages = rewards - mean
    if scale == "group":
        std = nanstd(grouped, dim=1).repeat_interleave(num_generations)
    elif scale == "batch":
        std = nanstd(rewards).expand_as(rewards)
    elif scale == "none":
        return torch.nan_to_num(advantages, nan=0.0)
    else:
        raise ValueError(f"scale_rewards must be group, batch or none, got {scale!r}")
    return torch.nan_to_num(advantages / (std + STD_EPS), nan=0.0)


def rloo_advantages(rewards: torch.Tensor, num_generations: int, normalize: bool = False) -> torch.Tensor:
    """RLOO's advantage (Ahmadian et al., 2024): each reward minus the mean of its siblings' (the other
    scored completions of its prompt), an unbiased baseline since it excludes the completion itself.
    ``normalize`` then standardises the advantages over the batch (TRL's ``normalize_advantages``)."""
    grouped = rewards.view(-1, num_generations)
    scored = (~torch.isnan(grouped)).sum(dim=1, keepdim=True)
    total = torch.nansum(grouped, dim=1, keepdim=True)
    baselines = (total - grouped) / (scored - 1)  # one scored sibling: 0/0 = NaN, advantage 0 below
    advantages = rewards - baselines.view(-1)
    if normalize:
        advantages = (advantages - torch.nanmean(advantages)) / (nanstd(advantages) + STD_EPS)
    return torch.nan_to_num(advantages, nan=0.0)


def rloo_kl_penalised(
    rewards: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """RLOO puts the KL to the reference in the reward, as the RLOO paper does: minus ``beta`` times the
    sequence's summed log-ratio of the sampling policy to the reference (the k1 estimate, which can be
    negative per token; GRPO instead adds k3 to the per-token loss, see policy_loss.py)."""
    if beta == 0.0:
        return rewards
    return rewards - beta * ((old_logps - ref_logps) * mask).sum(-1)
