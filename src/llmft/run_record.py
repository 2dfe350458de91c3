"""The files a finished run leaves beside its model, for the people and tools that read the run directory
later: eval_results.json (the final metrics), config.yaml (the config as run), data_report.json (where the
rows came from and what was kept), labels.json (a classifier's labels) and run.json (versions, seed, times,
task, data facts, adapter, how training ended). Only rank 0 writes them (pipeline.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from llmft.run_dir import RunDir, labels_record

if TYPE_CHECKING:
    from llmft.adapters.build import AdapterSummary
    from llmft.config.schema import RunConfig
    from llmft.data.build import EncodedData, PreparedData
    from llmft.train.loop import LoopState


def write_run_files(
    out: Path,
    config: RunConfig,
    prepared: PreparedData,
    encoded: EncodedData,
    metrics: dict[str, float],
    record: dict[str, object],
    command: str | None = None,
) -> None:
    """eval_results.json, config.yaml, data_report.json, labels.json and run.json: the data's facts and
    ``record`` (its ``started``, ``task`` and ``task_reason`` first, then the rest as given)."""
    from functools import partial

    from llmft.train import artifacts

    run = RunDir(out)
    # A failed write (disk full) names the last good checkpoint and how to resume from it.
    write_json = partial(artifacts.write_json, command=command)
    write_json(run.eval_results_file, metrics)
    artifacts.write_config(run.config_file, config.model_dump(mode="json"), command=command)
    write_json(run.data_report_file, data_report(prepared, encoded))
    if encoded.label_names:
        write_json(run.labels_file, labels_record(encoded.label_names))
    write_json(
        run.record_file,
        {
            "versions": artifacts.versions(),
            "seed": config.seed,
            "started": record.pop("started"),
            "finished": artifacts.now(),
            "task": record.pop("task"),
            "task_reason": record.pop("task_reason"),
            "data_fingerprint": prepared.fingerprint,
            "data_format": prepared.format,
            "objective": encoded.objective,
            **record,
        },
    )


def data_report(prepared: PreparedData, encoded: EncodedData) -> dict[str, object]:
    """data_report.json: where the rows came from, and per split what was kept, dropped and truncated."""
    report: dict[str, object] = {
        "origin": prepared.origin,
        "format": prepared.format,
        "template": encoded.template,
        "splits": {
            s: {**prepared.reports[s].to_dict(), **stats.to_dict()} for s, stats in encoded.stats.items()
        },
    }
    if prepared.parts:  # data.datasets: each set's own report, and its share of an epoch's rows
        quotas = dict(zip(encoded.mixture.names, encoded.mixture.quotas())) if encoded.mixture else {}
        report["datasets"] = {
            name: {
                "origin": part.origin,
                "format": part.format,
                "rows_per_epoch": quotas.get(name),
                "splits": {s: r.to_dict() for s, r in part.reports.items()},
            }
            for name, part in prepared.parts
        }
    return report


def seconds_text(seconds: float) -> str:
    """A duration as the log line and the end-of-run summary both write it: `3.3 s`, `12.5 min`."""
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.1f} s"


def adapter_record(adapter: AdapterSummary) -> dict[str, object]:
    return {
        "adapter": adapter.describe(),
        "trainable_params": adapter.trainable_params,
        "total_params": adapter.total_params,
    }


def outcome_record(state: LoopState) -> dict[str, object]:
    """How training ended, for run.json: a resumed or stopped run says so here."""
    return {
        "steps": state.step,
        "epochs_completed": state.epoch,
        "tokens_seen": state.tokens_seen,
        "stop_reason": state.stop_reason or "completed",
        "skipped_nonfinite_steps": state.skipped_nonfinite,
    }
