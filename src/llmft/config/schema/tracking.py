"""The `tracking` section: where metrics go besides the run dir's metrics.jsonl."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llmft.config.schema.base import RuleError, Section


class TrackingConfig(Section):
    report_to: list[Literal["jsonl", "tensorboard", "wandb", "mlflow"]] = Field(
        default_factory=lambda: ["jsonl"],
        description="Where metrics go besides the run dir's metrics.jsonl, which is always written (resume "
        "and `llmft report` read it; listing `jsonl` is optional): `tensorboard` (event files, needs "
        "`llmft[tensorboard]`), `mlflow` (needs `llmft[mlflow]`), `wandb` (needs `llmft[wandb]`).",
    )
    project: str | None = Field(None, description="MLflow experiment / W&B project name; default `llmft`.")
    run_name: str | None = Field(
        None, description="MLflow / W&B run name; default: the output dir's name (the trial's, in a search)."
    )
    api_key: str | None = Field(
        None,
        description="W&B API key (else WANDB_API_KEY or `wandb login`); passed to wandb in memory only and "
        "redacted from every file llmft writes.",
    )
    dir: str | None = Field(
        None, description="TensorBoard event folder for this run; default OUTPUT/tensorboard."
    )
    uri: str | None = Field(
        None,
        description="MLflow tracking URI (a server `http://...` or `sqlite:///path.db`); default "
        "MLFLOW_TRACKING_URI, else a local store OUTPUT/mlflow.db (artifacts in OUTPUT/mlartifacts).",
    )
    log_model: bool = Field(
        False, description="Also upload the final model folder as an MLflow artifact (can be large)."
    )

    @model_validator(mode="after")
    def _settings_have_their_tracker(self) -> TrackingConfig:
        """A setting for a tracker that is not in report_to would do nothing: refused, not ignored."""
        needs = {"dir": "tensorboard", "uri": "mlflow", "log_model": "mlflow"}
        for name, tracker in needs.items():
            if getattr(self, name) and tracker not in self.report_to:
                raise RuleError(
                    f"tracking.{name} is set but {tracker} is not in tracking.report_to: it would do nothing",
                    fix=f"add {tracker} to tracking.report_to, or remove tracking.{name}",
                )
        return self
