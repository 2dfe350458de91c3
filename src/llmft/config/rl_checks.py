"""`training.rl` against `training.objective`: the rules of the online RL settings that need the objective.

The settings' own rules (epsilon_high ≥ epsilon, dr_grpo's length) are in the schema (schema/rl.py); the
table (config/objectives.py) says which objectives read the section and whether a run can train them yet.
"""

from __future__ import annotations

from llmft.config.objective_rules import train_refusal
from llmft.config.objectives import rollout_names
from llmft.config.schema import RlConfig, RunConfig
from llmft.errors import Problem

REWARD_EXAMPLE = "`rewards: [{function: my_rewards.py:correct, weight: 1.0}]`"
# Settings grpo reads and rloo does not, with why (RLOO's loss is TRL's RLOOTrainer's).
GRPO_ONLY = {
    "loss_type": "rloo's loss has one form: one importance ratio per completion, averaged over completions",
    "importance_sampling_level": "rloo's importance ratio is already one per completion (sequence level)",
}


def check_rl(config: RunConfig) -> list[Problem]:
    """The RL section is given exactly when the objective reads it, with what that objective needs."""
    objective, rl = config.training.objective, config.training.rl
    online = rollout_names()
    if objective not in online:
        if rl is None:
            return []
        message = f"training.rl is read only by the online RL objectives ({', '.join(online)}), and "
        message += f"training.objective is {objective}"
        fix = f"set training.objective: {online[0]} (or {', '.join(online[1:])}), or delete training.rl"
        return [Problem("training.rl", message, fix=fix)]
    problems = [*_rewards_problems(objective, rl), *(_rloo_problems(rl) if objective == "rloo" else [])]
    refusal = train_refusal(objective)
    if refusal:
        problems.append(Problem("training.objective", refusal[0], fix=refusal[1], severity="warning"))
    return problems


def _rewards_problems(objective: str, rl: RlConfig | None) -> list[Problem]:
    if rl is not None and rl.rewards:
        return []
    where = "training.rl is missing" if rl is None else "training.rl.rewards is empty"
    return [
        Problem(
            "training.rl.rewards",
            f"objective {objective} learns from rewards of its own completions, and {where}",
            fix=f"add at least one reward function under training.rl, e.g. {REWARD_EXAMPLE}",
        )
    ]


def _rloo_problems(rl: RlConfig | None) -> list[Problem]:
    if rl is None:
        return []
    problems = [
        Problem(f"training.rl.{name}", f"{name} is read by grpo only: {why}", fix=f"delete {name}")
        for name, why in GRPO_ONLY.items()
        if getattr(rl, name) is not None
    ]
    if rl.scale_rewards == "group":
        problems.append(
            Problem(
                "training.rl.scale_rewards",
                "scale_rewards `group` is grpo's: rloo's leave-one-out baseline already centres each group",
                fix="use scale_rewards: batch (standardise over the batch) or none (rloo's default)",
            )
        )
    return problems
