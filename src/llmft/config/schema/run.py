"""The whole run config: the top-level keys and one field per section."""

from __future__ import annotations

from pydantic import Field

from llmft.config.schema.base import Section
from llmft.config.schema.data import DataConfig
from llmft.config.schema.evaluation import EvaluationConfig
from llmft.config.schema.hpo import HpoConfig
from llmft.config.schema.model import ModelConfig
from llmft.config.schema.tracking import TrackingConfig
from llmft.config.schema.training import TrainingConfig


class RunConfig(Section):
    """The whole run. Sections are built by explicit builders, each taking only its own section."""

    output_dir: str = Field(
        "outputs/run", description="Run directory; relative paths are relative to the config file."
    )
    seed: int = Field(42, description="Seed for data order, initialisation and dropout.")
    data: DataConfig = Field(description="Data source, format and tokenization.")
    model: ModelConfig = Field(description="Base model and adapter.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Optimisation settings.")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="What is measured.")
    hpo: HpoConfig = Field(default_factory=HpoConfig, description="Hyperparameter search.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Metric logging.")
    hf_token: str | None = Field(
        None, description="Hub token for private models/data; redacted from all outputs."
    )
