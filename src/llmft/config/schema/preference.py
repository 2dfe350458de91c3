"""`training.objective` and `training.preference`: what training minimises, and the preference settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt, model_validator

from llmft.config.objectives import names
from llmft.config.schema.base import PositiveFloat, RuleError, Section

# The values of training.objective, from the one table of objectives (config/objectives.py).
Objective = Literal[("auto", *names())]  # type: ignore[valid-type]


class PreferenceConfig(Section):
    """Settings of the preference objectives (dpo, simpo, orpo, kto, reward); unset means the objective's
    default. Which objective reads which setting is in the table of config/objectives.py."""

    beta: PositiveFloat | None = Field(
        None,
        description="Strength of the preference term: DPO/KTO's KL weight, SimPO/ORPO's scale; default 0.1.",
    )
    loss_type: Literal["sigmoid", "robust", "ipo", "hinge"] | None = Field(
        None, description="DPO loss: `sigmoid` (default), `robust` (with label_smoothing), `ipo`, `hinge`."
    )
    label_smoothing: Annotated[float, Field(ge=0, lt=0.5)] | None = Field(
        None, description="DPO `robust`: assumed share of flipped preference labels, in [0, 0.5)."
    )
    gamma: Annotated[float, Field(ge=0)] | None = Field(
        None, description="SimPO target reward margin (the loss uses gamma/beta); default 0.5."
    )
    desirable_weight: PositiveFloat | None = Field(
        None, description="KTO weight of desirable (label true) rows; default 1."
    )
    undesirable_weight: PositiveFloat | None = Field(
        None, description="KTO weight of undesirable (label false) rows; default 1."
    )
    max_length: PositiveInt | None = Field(
        None, description="Longest prompt + completion in tokens; default data.tokenization.max_length."
    )
    max_prompt_length: PositiveInt | None = Field(
        None,
        description="Prompts of a too-long row are cut from the left (keeping their end) to this many "
        "tokens; default half of max_length.",
    )
    precompute_reference: bool = Field(
        False,
        description="DPO/KTO without an adapter: compute the reference log-probs in one pass before "
        "training (cached on disk by data and model) instead of keeping a frozen copy in memory.",
    )
    reference_model: str | None = Field(
        None, description="DPO/KTO: a different reference model (Hub id or directory); default the base."
    )

    @model_validator(mode="after")
    def _lengths(self) -> PreferenceConfig:
        if self.max_length and self.max_prompt_length and self.max_prompt_length >= self.max_length:
            raise RuleError(
                f"max_prompt_length ({self.max_prompt_length}) must be below max_length ({self.max_length}): "
                "a prompt that long leaves no room for the answer",
                fix=f"set max_prompt_length to at most {self.max_length - 1}",
            )
        if self.label_smoothing and self.loss_type != "robust":
            raise RuleError(
                f"label_smoothing is read only by loss_type `robust`, not `{self.loss_type or 'sigmoid'}`",
                fix="set loss_type: robust, or delete label_smoothing",
            )
        return self
