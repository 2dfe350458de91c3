"""Optimizer and learning-rate schedule from the training section.

Weight decay is applied to weight matrices only, never to biases and norm weights (decaying those hurts
and is what every careful recipe avoids). AdamW uses the fused/foreach kernel where torch offers it;
Adafactor comes from transformers, 8-bit AdamW from bitsandbytes (imported only when chosen).
"""

from __future__ import annotations

import math

import torch

from llmft.config.schema import TrainingConfig
from llmft.errors import EnvironmentProblem


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, object]]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_norm_or_bias = param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
        (no_decay if is_norm_or_bias else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: torch.nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    """The optimizer `training.optimizer` names (Hugging Face names were mapped onto these by the config)."""
    groups = parameter_groups(model, cfg.weight_decay)
    build = {"adamw": _adamw, "sgd": _sgd, "adafactor": _adafactor, "adamw_8bit": _adamw_8bit}[cfg.optimizer]
    return build(groups, cfg)


def _sgd(groups: list[dict[str, object]], cfg: TrainingConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=cfg.adam_beta1)


def _adamw(groups: list[dict[str, object]], cfg: TrainingConfig) -> torch.optim.Optimizer:
    on_gpu = any(p.is_cuda for g in groups for p in g["params"])  # type: ignore[attr-defined]
    kernel = {"fused": True} if on_gpu else {"foreach": True}
    return torch.optim.AdamW(
        groups, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon, **kernel
    )


def _adafactor(groups: list[dict[str, object]], cfg: TrainingConfig) -> torch.optim.Optimizer:
    """transformers' Adafactor at our learning rate and schedule: relative steps and parameter scaling off,
    as the Hugging Face Trainer sets it; momentum (beta1) only when adam_beta1 is set explicitly."""
    from transformers.optimization import Adafactor

    beta1 = cfg.adam_beta1 if "adam_beta1" in cfg.model_fields_set else None
    return Adafactor(
        groups,
        lr=cfg.learning_rate,
        scale_parameter=False,
        relative_step=False,
        warmup_init=False,
        beta1=beta1,
    )


def _adamw_8bit(groups: list[dict[str, object]], cfg: TrainingConfig) -> torch.optim.Optimizer:
    """bitsandbytes' AdamW with 8-bit (block-wise quantised) state: a quarter of AdamW's state memory.
    Tensors under 4096 values keep 32-bit state (bitsandbytes' own rule: too small to gain)."""
    try:
        import bitsandbytes as bnb
    except ImportError as err:
        raise EnvironmentProblem(
            f"training.optimizer: adamw_8bit needs bitsandbytes, which is not installed ({err})",
            fix="pip install bitsandbytes (CPU or GPU), or set training.optimizer: adamw",
        ) from None
    return bnb.optim.AdamW8bit(
        groups, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon
    )


def warmup_steps(cfg: TrainingConfig, total_steps: int) -> int:
    if cfg.warmup_steps is not None:
        return min(cfg.warmup_steps, total_steps)
    if cfg.warmup_ratio is not None:
        return int(math.ceil(cfg.warmup_ratio * total_steps))
    return 0


def lr_factor(step: int, total: int, warmup: int, kind: str) -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based): linear warmup then the schedule."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    progress = min(max(progress, 0.0), 1.0)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(0.0, 1.0 - progress)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainingConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warm = warmup_steps(cfg, total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warm, cfg.lr_scheduler)
    )
