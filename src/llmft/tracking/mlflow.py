"""MLflow through ``MlflowClient`` (no global active run: trials and library callers cannot interfere).

The store is ``tracking.uri``, else MLFLOW_TRACKING_URI, else a local SQLite store OUTPUT/mlflow.db with
artifacts in OUTPUT/mlartifacts. Params are the flattened resolved config (secrets redacted), metrics go
per step under their metrics.jsonl names, tags say the llmft version, task and data fingerprint; at the end
the final metrics (``final/...``) and the run files as artifacts (the model folder with
``tracking.log_model``). A trial's run is nested under its search's parent run.

Resume continues the run id saved in the checkpoint. MLflow cannot delete metric points, so the steps
the killed process already logged past the checkpoint are not logged again: the resumed training is exact
(same batches, same RNG), so those points are the ones it would log. The series stays gap- and
duplicate-free.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from llmft import run_dir
from llmft.config.tracker_packages import require
from llmft.errors import EnvironmentProblem
from llmft.tracking.base import FINAL_PREFIX, Final, Resume, RunInfo, flatten, numeric

PARAM_BATCH = 100  # MLflow's limit of params per log_batch
QUIET = ("mlflow", "alembic", "sqlalchemy")


@contextmanager
def quiet():
    """MLflow and its SQL store are chatty at INFO ("Creating initial MLflow database tables...").

    mlflow sets its logger's level when first imported, so it is imported before the levels are set.
    """
    require("mlflow")
    levels = {name: logging.getLogger(name).level for name in QUIET}
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def store_uri(configured: str | None, out: Path) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment: ours only for the local default store)."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, None
    return f"sqlite:///{(out / run_dir.MLFLOW_DB).resolve()}", (
        out / run_dir.MLFLOW_ARTIFACTS
    ).resolve().as_uri()


def open_client(uri: str) -> object:
    require("mlflow")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(client: object, name: str, artifacts: str | None) -> str:
    """The experiment called ``name``, created when missing."""
    found = client.get_experiment_by_name(name)  # type: ignore[attr-defined]
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifacts))  # type: ignore[attr-defined]


class MlflowSink:
    name = "mlflow"

    def __init__(self, configured_uri: str | None, log_model: bool) -> None:
        self.configured_uri, self.log_model = configured_uri, log_model
        self.client: object = None
        self.uri = ""
        self.run_id = ""
        self.experiment_id = ""
        self.logged: dict[str, int] = {}  # key → last step the store has (a resumed run's)

    def start(self, info: RunInfo, resume: Resume | None) -> None:
        parent = info.parent.mlflow if info.parent else {}
        self.uri, artifacts = (parent["uri"], None) if parent else store_uri(self.configured_uri, info.out)
        with quiet():
            try:
                self.client = open_client(self.uri)
                self.experiment_id = parent.get("experiment_id") or experiment_id(
                    self.client, info.project, artifacts
                )
                saved = (resume.saved.get(self.name) if resume else None) or {}
                if not self._continue(saved.get("run_id"), info):
                    self._create(info, parent.get("run_id"))
            except EnvironmentProblem:
                raise
            except Exception as err:  # noqa: BLE001 - an unreachable server, a bad URI: the user's to fix
                raise EnvironmentProblem(
                    f"MLflow could not start a run at {self.uri}: {type(err).__name__}: {err}",
                    fix="check tracking.uri / MLFLOW_TRACKING_URI (unset, llmft uses OUTPUT/mlflow.db)",
                ) from None

    def _create(self, info: RunInfo, parent_run: str | None) -> None:
        tags = info.tags()
        if parent_run:
            tags["mlflow.parentRunId"] = parent_run
        run = self.client.create_run(self.experiment_id, run_name=info.name, tags=tags)  # type: ignore[attr-defined]
        self.run_id = run.info.run_id
        self._params(flatten(info.config))

    def _continue(self, run_id: str | None, info: RunInfo) -> bool:
        """Reopen the checkpoint's run: True when it exists in this store."""
        if not run_id:
            return False
        try:
            run = self.client.get_run(run_id)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - not in this store (another tracking.uri): start a new run
            return False
        self.run_id = run_id
        self.client.update_run(run_id, status="RUNNING")  # type: ignore[attr-defined]
        for key in run.data.metrics:
            history = self.client.get_metric_history(run_id, key)  # type: ignore[attr-defined]
            self.logged[key] = max((m.step for m in history), default=-1)
        old = run.data.params
        params = flatten(info.config)
        self._params({k: v for k, v in params.items() if k not in old})
        changed = {k: f"{old[k]} -> {v}" for k, v in params.items() if k in old and old[k] != str(v)}
        for key, change in changed.items():  # MLflow params cannot change: a resume's allowed changes
            self.client.set_tag(run_id, f"llmft.resume_change.{key}", change[:5000])  # type: ignore[attr-defined]
        return True

    def _params(self, params: dict[str, object]) -> None:
        from mlflow.entities import Param

        items = [Param(k[:250], str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), PARAM_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + PARAM_BATCH])  # type: ignore[attr-defined]

    def log(self, record: dict[str, object]) -> None:
        from mlflow.entities import Metric

        step, now = int(record["step"]), int(time.time() * 1000)  # type: ignore[call-overload]
        metrics = [
            Metric(k, v, now, step) for k, v in numeric(record).items() if step > self.logged.get(k, -1)
        ]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)  # type: ignore[attr-defined]

    def flush(self) -> None:
        """Each log_batch is stored before it returns."""

    def state(self) -> dict[str, str]:
        return {"run_id": self.run_id, "experiment_id": self.experiment_id, "uri": self.uri}

    def finish(self, final: Final) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(f"{FINAL_PREFIX}{k}", float(v), now, final.step) for k, v in final.metrics.items()]
        with quiet():
            if metrics:
                self.client.log_batch(self.run_id, metrics=metrics)  # type: ignore[attr-defined]
            for name in run_dir.TRACKED_FILES:
                if (final.out / name).is_file():
                    self.client.log_artifact(self.run_id, str(final.out / name))  # type: ignore[attr-defined]
            if self.log_model and final.model_dir is not None and final.model_dir.is_dir():
                self.client.log_artifacts(self.run_id, str(final.model_dir), run_dir.MODEL)  # type: ignore[attr-defined]
            self.client.set_terminated(self.run_id, "FINISHED")  # type: ignore[attr-defined]

    def abort(self, status: str) -> None:
        if self.run_id:
            self.client.set_terminated(self.run_id, status)  # type: ignore[attr-defined]
