"""The `hpo` section: a hyperparameter search instead of a single run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from llmft.config.schema.base import PositiveFloat, Section


class HpoConfig(Section):
    enabled: bool = Field(False, description="Run a hyperparameter search instead of a single training run.")
    backend: Literal["grid", "random", "optuna", "ray"] = Field("grid", description="Search engine.")
    metric: str = Field("eval_loss", description="Metric to optimise (`eval_loss`, `eval_accuracy`, ...).")
    direction: Literal["minimize", "maximize"] = Field(
        "minimize", description="Whether lower or higher is better."
    )
    max_trials: PositiveInt | None = Field(
        None, description="Trials to run; grid defaults to the whole grid."
    )
    parameters: dict[str, object] = Field(
        default_factory=dict,
        description="Config path → space: a list (choices), `{low, high, log}` (float) "
        "or `{low, high, step}` (int).",
    )
    parallel: PositiveInt = Field(1, description="Trials at once on this machine.")
    timeout: PositiveFloat | None = Field(None, description="Stop starting trials after this many seconds.")
    storage: str | None = Field(
        None, description="Optuna storage URL; default: SQLite file in the output dir."
    )
    pruner: Literal["none", "median", "asha"] = Field("median", description="Early stopping of bad trials.")
    search_algorithm: Literal["random", "tpe", "optuna", "hyperopt", "bayesopt"] | None = Field(
        None, description="Ray Tune search algorithm."
    )
    ray_address: str | None = Field(None, description="Ray cluster to join; default: a local Ray instance.")
    refit: bool = Field(False, description="Train the best config once more as the run's model.")
    seed: int | None = Field(None, description="Seed of the sampler; defaults to the run seed.")
