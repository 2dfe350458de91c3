"""`training.rl`: online RL (GRPO and its variants, RLOO): sampling, rewards, the clipped loss.

Defaults are TRL 1.16's (GRPOConfig, RLOOConfig). Where the two trainers differ (num_generations, beta,
scale_rewards) the field is unset here and ``OBJECTIVE_DEFAULTS`` says what each objective takes, as
`training.preference` does. Rules that need the objective (an RL section without an RL objective, rloo
refusing grpo-only settings, at least one reward) are in config/rl_checks.py.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    JsonValue,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    ValidationInfo,
    field_validator,
)

from llmft.config.schema.base import PositiveFloat, RuleError, Section

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
ScaleRewards = Literal["group", "batch", "none"]
SamplingLevel = Literal["token", "sequence"]

# What an unset field means, per objective: TRL 1.16's GRPOConfig and RLOOConfig defaults. RLOO has no
# loss_type or importance_sampling_level (its loss is one ratio per sequence); its `normalize_advantages`
# (off by default) is scale_rewards `batch` here.
OBJECTIVE_DEFAULTS: dict[str, dict[str, object]] = {
    "grpo": {
        "num_generations": 8,
        "beta": 0.0,
        "loss_type": "dapo",
        "importance_sampling_level": "token",
        "scale_rewards": "group",
    },
    "rloo": {"num_generations": 2, "beta": 0.05, "scale_rewards": "none"},
}


# Built-in rewards' arguments that are paths, relative to the config file like every path in it (config/
# load.py makes them absolute). The built-ins mark them with `path` metadata (rewards/builtins.py); a test
# holds this table to those marks, since config/ imports nothing above it.
REWARD_PATH_ARGS: dict[str, tuple[str, ...]] = {"reward_model": ("run",)}


def is_reward_file(target: str) -> bool:
    """Whether the part of a reward reference before its colon is a file (it ends in .py or has a slash),
    not a dotted module name."""
    return target.endswith(".py") or "/" in target or "\\" in target


class RewardConfig(Section):
    """One reward function and its weight; a completion's reward is the weighted sum of them all."""

    function: str = Field(
        ...,
        min_length=1,
        description="The reward function: a built-in name, `path/to/file.py:function` or "
        "`package.module:function` (TRL's calling convention: completions and the data's columns in, one "
        "float or None per completion out).",
    )
    weight: float = Field(1.0, description="Weight of this reward in the sum (negative: a penalty).")
    args: dict[str, JsonValue] = Field(
        default_factory=dict, description="Keyword arguments the function is called with, besides the batch."
    )

    @field_validator("function")
    @classmethod
    def _names_a_function(cls, value: str) -> str:
        """Only the shape: which names exist is the reward module's to say when the run resolves them."""
        module, colon, function = value.strip().rpartition(":")
        if not value.strip() or (colon and not (module.strip() and function.strip())):
            raise RuleError(
                f"reward function {value!r} names no function",
                fix="write a built-in name, `path/to/file.py:function` or `package.module:function`",
            )
        return value


class RlConfig(Section):
    """Settings of the online RL objectives (grpo, rloo); unset means the objective's default (TRL 1.16)."""

    rewards: list[RewardConfig] = Field(
        default_factory=list,
        description="The reward functions, each with a weight; at least one for grpo and rloo.",
    )
    num_generations: Annotated[int, Field(ge=2)] | None = Field(
        None,
        description="Completions sampled per prompt, the group its advantages compare within; default 8 "
        "(grpo), 2 (rloo).",
    )
    max_completion_length: PositiveInt | None = Field(
        512,
        description="Longest completion sampled, in tokens; null: up to data.tokenization.max_length in all.",
    )
    temperature: PositiveFloat = Field(
        1.0, description="Sampling temperature; the log-probs of the loss are taken at the same temperature."
    )
    top_p: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0, description="Nucleus sampling; 1 keeps all tokens."
    )
    top_k: NonNegativeInt = Field(0, description="Sample among the k likeliest tokens; 0 keeps all.")
    beta: NonNegativeFloat | None = Field(
        None,
        description="Weight of the KL to the reference model; 0 loads no reference. Default 0 (grpo), 0.05 "
        "(rloo, where it is a penalty in the reward).",
    )
    epsilon: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.2, description="Clip the importance ratio below at 1 - epsilon (and above at 1 + epsilon_high)."
    )
    epsilon_high: PositiveFloat | None = Field(
        None, description="Upper clip 1 + epsilon_high (DAPO's clip-higher recommends 0.28); default epsilon."
    )
    num_iterations: PositiveInt = Field(
        1, description="Optimizer updates per generated batch (GRPO's μ); above 1, the ratio clip matters."
    )
    loss_type: LossType | None = Field(
        None,
        description="grpo only. How token losses are averaged: `dapo` (default; over all tokens of the "
        "accumulated batch), `bnpo` (over the micro-batch's tokens), `grpo` (per sequence, then over "
        "sequences: favours short right answers), `dr_grpo` (over rows × max_completion_length).",
    )
    importance_sampling_level: SamplingLevel | None = Field(
        None,
        description="grpo only. `token` (default): a ratio per token; `sequence` (GSPO): one "
        "length-normalised ratio per completion.",
    )
    scale_rewards: ScaleRewards | None = Field(
        None,
        description="Divide advantages by the std of the prompt's group (`group`, grpo's default), of the "
        "batch (`batch`), or not (`none`, Dr. GRPO; rloo's default). rloo: `batch` standardises its "
        "advantages over the batch (TRL's normalize_advantages); `group` is grpo's only.",
    )
    mask_truncated_completions: bool = Field(
        False, description="Leave completions cut off at max_completion_length out of the loss (DAPO)."
    )

    @field_validator("epsilon_high")
    @classmethod
    def _clip_higher(cls, value: float | None, info: ValidationInfo) -> float | None:
        """DAPO's clip-higher widens the range above 1; narrower above than below is a swapped pair."""
        epsilon = info.data.get("epsilon")
        if value is not None and epsilon is not None and value < epsilon:
            raise RuleError(
                f"epsilon_high ({value:g}) is below epsilon ({epsilon:g}): the clip range would be narrower "
                "above 1 than below",
                fix=f"set epsilon_high to at least {epsilon:g} (DAPO uses 0.28), or delete it",
            )
        return value

    @field_validator("loss_type")
    @classmethod
    def _dr_grpo_length(cls, value: LossType | None, info: ValidationInfo) -> LossType | None:
        if (
            value == "dr_grpo"
            and "max_completion_length" in info.data
            and info.data["max_completion_length"] is None
        ):
            raise RuleError(
                "loss_type dr_grpo divides by max_completion_length, and it is null",
                fix="set max_completion_length (e.g. 512), or use loss_type: dapo",
            )
        return value

    def resolved(self, objective: str) -> dict[str, object]:
        """Every setting for ``objective``, an unset one taking that objective's default."""
        values = self.model_dump(exclude={"rewards"})
        defaults = OBJECTIVE_DEFAULTS[objective]
        return {k: defaults.get(k) if v is None and k in defaults else v for k, v in values.items()}
