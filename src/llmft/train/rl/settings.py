"""`training.rl` → the loss's settings: the one place the config section becomes PolicySettings."""

from __future__ import annotations

from typing import cast

from llmft.config.schema import RlConfig
from llmft.train.rl.policy_loss import LossType, PolicySettings, SamplingLevel


def policy_settings(rl: RlConfig, objective: str) -> PolicySettings:
    """The clipped loss's settings for ``objective`` (grpo or rloo), unset fields taking its TRL default.
    rloo has no loss_type or importance level of its own (rloo_loss does not read them)."""
    values = rl.resolved(objective)
    return PolicySettings(
        loss_type=cast(LossType, values["loss_type"] or "dapo"),
        importance_sampling_level=cast(SamplingLevel, values["importance_sampling_level"] or "token"),
        epsilon=rl.epsilon,
        epsilon_high=rl.epsilon_high,
        beta=cast(float, values["beta"]),
        max_completion_length=rl.max_completion_length,
    )
