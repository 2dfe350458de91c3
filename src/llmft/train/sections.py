"""The config sections training reads, bundled once by the pipeline: never the whole config below it.

The trainer (trainer.py), its parts (parts.py) and the objectives' context (objectives/base.py) read these
and nothing else of a run's config; pipeline.py makes them from the config it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmft.config.schema import DataConfig, EvaluationConfig, ModelConfig, TrainingConfig


@dataclass(frozen=True)
class TrainSections:
    """``training``: the optimisation (and its preference settings); ``data``: packing, batch padding and
    grouping; ``model``: how a reference model is loaded (as the base model was); ``evaluation``: metrics
    and whether the test split is scored; ``seed``: data order and dropout; ``hf_token``: the Hub token
    of a reference model; ``config_data``: the whole config as plain data, which each checkpoint keeps
    (redacted, in its config.yaml) for a resume to compare; ``output_dir``: the run directory, where an
    objective writes its own files (online RL's rollouts; None: nothing written)."""

    training: TrainingConfig
    data: DataConfig
    model: ModelConfig
    evaluation: EvaluationConfig
    seed: int
    config_data: dict[str, object]
    hf_token: str | None = None
    output_dir: Path | None = None
