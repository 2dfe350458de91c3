"""A search as trackers see it: one MLflow parent run with a nested run per trial, the best one tagged;
in W&B, one group. The link lives in OUTPUT/tracking.json, so trials in worker processes find it and a
resumed search continues the same parent run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.atomic import write_atomic
from llmft.tracking.base import SearchLink, flatten
from llmft.tracking.session import DEFAULT_PROJECT, is_main_process

if TYPE_CHECKING:  # pragma: no cover
    from llmft.config.schema import HpoConfig, TrackingConfig

Say = Callable[[str], None]
LINK_FILE = "tracking.json"
STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED", "running": "KILLED"}
SEARCH_ARTIFACTS = ("hpo_results.csv", "hpo_results.json", "best_config.yaml", "search.json")


def start_search(tracking: TrackingConfig, hpo: HpoConfig, out: Path, say: Say) -> SearchLink | None:
    """The search's link for its trials (None with no external tracker): the MLflow parent run is created,
    or reopened when the search resumes; ``hpo`` is logged (redacted) as its params."""
    external = [t for t in tracking.report_to if t != "jsonl"]
    if not external or not is_main_process():
        return None
    old = read_link(out)
    group = old.group if old else out.resolve().name
    mlflow: dict[str, str] = {}
    if "mlflow" in external:
        mlflow = _parent_run(tracking, hpo, out, group, old.mlflow.get("run_id") if old else None)
        say(f"tracking: mlflow parent run {mlflow['run_id']} at {mlflow['uri']}")
    link = SearchLink(group, None, mlflow)
    write_atomic(out / LINK_FILE, json.dumps({"group": group, "mlflow": mlflow}, indent=2) + "\n")
    return link


def read_link(out: Path, trial: int | None = None) -> SearchLink | None:
    """The search's link as trial ``trial`` uses it (None: the refit, or no search link written)."""
    path = out / LINK_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return SearchLink(str(data["group"]), trial, dict(data.get("mlflow") or {}))


def _parent_run(
    tracking: TrackingConfig, hpo: HpoConfig, out: Path, group: str, run_id: str | None
) -> dict[str, str]:
    from llmft.config.redact import redact
    from llmft.tracking.mlflow import experiment_id, open_client, quiet, store_uri
    from llmft.version import __version__

    uri, artifacts = store_uri(tracking.uri, out)
    with quiet():
        client = open_client(uri)
        experiment = experiment_id(client, tracking.project or DEFAULT_PROJECT, artifacts)
        if run_id and _exists(client, run_id):
            client.update_run(run_id, status="RUNNING")  # type: ignore[attr-defined]
        else:
            tags = {"llmft.version": __version__, "llmft.search": group, "llmft.role": "search"}
            run = client.create_run(experiment, run_name=tracking.run_name or group, tags=tags)  # type: ignore[attr-defined]
            run_id = run.info.run_id
            from mlflow.entities import Param

            settings = redact(hpo.model_dump(mode="json"))
            params = [Param(f"hpo.{k}"[:250], str(v)[:6000]) for k, v in flatten(settings).items()]  # type: ignore[arg-type]
            client.log_batch(run_id, params=params[:100])  # type: ignore[attr-defined]
    return {"uri": uri, "experiment_id": experiment, "run_id": str(run_id)}


def _exists(client: object, run_id: str) -> bool:
    try:
        client.get_run(run_id)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - gone from the store
        return False
    return True


def finish_search(
    link: SearchLink | None,
    out: Path,
    outcomes: list[tuple[int, str, float | None]],
    best: tuple[int, str, float] | None,
) -> None:
    """End the parent run: each trial's run gets its final state (pruned trials KILLED), the best trial's
    run is tagged ``llmft.best``, and the parent gets the best value and the results files.

    ``outcomes``: (trial number, state, value) per trial; ``best``: (trial number, metric, value).
    """
    if link is None or not link.mlflow:
        return
    from llmft.tracking.mlflow import open_client, quiet

    with quiet():
        client = open_client(link.mlflow["uri"])
        parent = link.mlflow["run_id"]
        children = _children(client, link)
        for number, state, _value in outcomes:
            child = children.get(str(number))
            if child is not None:
                client.set_tag(child, "llmft.trial_state", state)  # type: ignore[attr-defined]
                client.set_terminated(child, STATUS.get(state, "FAILED"))  # type: ignore[attr-defined]
        if best is not None:
            number, metric, value = best
            client.set_tag(parent, "llmft.best_trial", str(number))  # type: ignore[attr-defined]
            client.log_metric(parent, f"best/{metric}", value)  # type: ignore[attr-defined]
            if str(number) in children:
                client.set_tag(children[str(number)], "llmft.best", "true")  # type: ignore[attr-defined]
                client.set_tag(parent, "llmft.best_run_id", children[str(number)])  # type: ignore[attr-defined]
        for name in SEARCH_ARTIFACTS:
            if (out / name).is_file():
                client.log_artifact(parent, str(out / name))  # type: ignore[attr-defined]
        client.set_terminated(parent, "FINISHED")  # type: ignore[attr-defined]


def _children(client: object, link: SearchLink) -> dict[str, str]:
    """Trial number → run id of the parent's nested runs (the latest run of a trial tried again)."""
    runs = client.search_runs(  # type: ignore[attr-defined]
        [link.mlflow["experiment_id"]],
        filter_string=f"tags.mlflow.parentRunId = '{link.mlflow['run_id']}'",
        order_by=["attributes.start_time ASC"],
        max_results=5000,
    )
    return {r.data.tags["llmft.trial"]: r.info.run_id for r in runs if "llmft.trial" in r.data.tags}
