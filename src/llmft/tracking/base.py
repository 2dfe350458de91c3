"""What every tracker sink is: the ``Tracker`` Protocol, and the facts a sink starts a run with.

A sink is told of a run once (``start``), gets every metrics record (``log``), flushes when a checkpoint is
written (so that everything up to the checkpoint is stored), says what a resume needs to continue the same
tracker run (``state``, kept in each checkpoint's tracking.json), and ends the run (``finish`` or
``abort``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

Scalar = int | float | str | bool


@dataclass(frozen=True)
class SearchLink:
    """What ties a trial's tracker runs to its search: the MLflow parent run and store, the W&B group."""

    group: str
    trial: int | None = None  # None: the search's refit run
    mlflow: dict[str, str] = field(default_factory=dict)  # uri, experiment_id, run_id of the parent


@dataclass(frozen=True)
class RunInfo:
    """The run as trackers describe it. ``config`` is the resolved config with secrets redacted."""

    out: Path
    name: str
    project: str
    task: str
    fingerprint: str
    version: str
    config: dict[str, object]
    api_key: str | None = None
    parent: SearchLink | None = None

    def tags(self) -> dict[str, str]:
        tags = {"llmft.version": self.version, "llmft.task": self.task}
        tags["llmft.data_fingerprint"] = self.fingerprint
        if self.parent is not None:
            tags["llmft.search"] = self.parent.group
            tags["llmft.trial"] = "refit" if self.parent.trial is None else str(self.parent.trial)
        return tags


@dataclass(frozen=True)
class Resume:
    """A resumed run: the checkpoint's step, and what each tracker saved there (its run id)."""

    step: int
    saved: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Final:
    """How the run ended: final metrics (eval_*, test_*) at ``step``, and the run folder's files."""

    metrics: dict[str, float]
    step: int
    out: Path
    model_dir: Path | None = None


class Tracker(Protocol):
    """One tracker sink."""

    name: str

    def start(self, info: RunInfo, resume: Resume | None) -> None: ...
    def log(self, record: dict[str, object]) -> None: ...
    def flush(self) -> None: ...
    def state(self) -> dict[str, str]: ...
    def finish(self, final: Final) -> None: ...
    def abort(self, status: str) -> None: ...


def numeric(record: dict[str, object]) -> dict[str, float]:
    """The record's metrics: every number but the step (booleans are not metrics)."""
    return {
        k: float(v)
        for k, v in record.items()
        if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def flatten(config: dict[str, object], prefix: str = "") -> dict[str, Scalar]:
    """Dotted keys → scalars: lists and dicts of values as compact JSON, None as `null` (MLflow params and
    TensorBoard hparams take scalars only)."""
    import json

    out: dict[str, Scalar] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{path}."))
        elif isinstance(value, (bool, int, float, str)):
            out[path] = value
        else:
            out[path] = json.dumps(value, separators=(",", ":"), default=str)
    return out


FINAL_PREFIX = "final/"  # final metrics are their own series: the last evaluation may share their step
