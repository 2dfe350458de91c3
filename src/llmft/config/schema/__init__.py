"""The run config: one pydantic model per section, ``extra="forbid"`` everywhere, one module per section.

Every option is documented once, in ``Field(description=...)``; ``llmft schema`` and docs/CONFIG.md are
generated from these descriptions. Rules about one field live in its type; rules within a section in a
``model_validator(mode="after")``; rules across sections in ``config/checks.py``.
This package imports only pydantic: ``llmft validate`` must not pay for torch.

The names below are the package's interface: import them from ``llmft.config.schema``.
"""

from __future__ import annotations

from llmft.config.schema.adapter import (
    REGEX_CHARS,
    TARGETS_HELP,
    AdapterConfig,
    AdaptionPromptAdapter,
    IA3Adapter,
    LoHaAdapter,
    LoKrAdapter,
    LoraAdapter,
    LoraInit,
    NoAdapter,
    OftAdapter,
    PrefixTuningAdapter,
    PromptTuningAdapter,
    QLoraAdapter,
    TargetModules,
    VeraAdapter,
)
from llmft.config.schema.base import Fraction, PositiveFloat, RuleError, Section
from llmft.config.schema.data import (
    DataConfig,
    DataFormat,
    DatasetConfig,
    NamedDataset,
    PreprocessingConfig,
    SplitNames,
    TokenizationConfig,
)
from llmft.config.schema.distributed import DistributedConfig, FsdpConfig
from llmft.config.schema.evaluation import EvaluationConfig, GenerationEvalConfig, Metric
from llmft.config.schema.hpo import HpoConfig
from llmft.config.schema.model import ModelConfig, QuantizationConfig
from llmft.config.schema.preference import Objective, PreferenceConfig
from llmft.config.schema.rl import OBJECTIVE_DEFAULTS, RewardConfig, RlConfig
from llmft.config.schema.run import RunConfig
from llmft.config.schema.tracking import TrackingConfig
from llmft.config.schema.training import TrainingConfig

__all__ = [
    "OBJECTIVE_DEFAULTS",
    "REGEX_CHARS",
    "TARGETS_HELP",
    "AdapterConfig",
    "AdaptionPromptAdapter",
    "DataConfig",
    "DataFormat",
    "DatasetConfig",
    "DistributedConfig",
    "EvaluationConfig",
    "Fraction",
    "FsdpConfig",
    "GenerationEvalConfig",
    "HpoConfig",
    "IA3Adapter",
    "LoHaAdapter",
    "LoKrAdapter",
    "LoraAdapter",
    "LoraInit",
    "Metric",
    "ModelConfig",
    "NamedDataset",
    "NoAdapter",
    "Objective",
    "OftAdapter",
    "PositiveFloat",
    "PreferenceConfig",
    "PrefixTuningAdapter",
    "PreprocessingConfig",
    "PromptTuningAdapter",
    "QLoraAdapter",
    "QuantizationConfig",
    "RewardConfig",
    "RlConfig",
    "RuleError",
    "RunConfig",
    "Section",
    "SplitNames",
    "TargetModules",
    "TokenizationConfig",
    "TrackingConfig",
    "TrainingConfig",
    "VeraAdapter",
]
