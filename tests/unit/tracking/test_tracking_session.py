"""The fan-out to trackers: every record to every sink once per (metric, step), a sink that fails is
dropped with one warning, checkpoints carry the sinks' run ids, and a failed run ends its tracker runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmft.config.load import validate_dict
from llmft.errors import RunInterrupted
from llmft.tracking.base import Final, Resume, RunInfo, flatten
from llmft.tracking.session import CHECKPOINT_FILE, Tracking, open_tracking, saved_state


class Sink:
    def __init__(self, name: str, fail_at: int | None = None) -> None:
        self.name, self.fail_at = name, fail_at
        self.records: list[dict[str, object]] = []
        self.flushed, self.ended = 0, ""

    def start(self, info: RunInfo, resume: Resume | None) -> None: ...

    def log(self, record: dict[str, object]) -> None:
        if record["step"] == self.fail_at:
            raise ConnectionError("server went away")
        self.records.append(record)

    def flush(self) -> None:
        self.flushed += 1

    def state(self) -> dict[str, str]:
        return {"run_id": f"{self.name}-1"}

    def finish(self, final: Final) -> None:
        self.ended = "FINISHED"

    def abort(self, status: str) -> None:
        self.ended = status


def test_records_fan_out_once_per_metric_and_step_and_a_failing_sink_is_dropped() -> None:
    said: list[str] = []
    good, bad = Sink("good"), Sink("bad", fail_at=2)
    tracking = Tracking([good, bad], said.append)
    tracking.log({"step": 1, "epoch": 0, "loss": 2.0})
    tracking.log({"step": 2, "epoch": 0, "loss": 1.5})
    tracking.log({"step": 2, "epoch": 0, "eval_loss": 1.7})  # an evaluation repeats its step's epoch
    assert good.records == [
        {"step": 1, "epoch": 0, "loss": 2.0},
        {"step": 2, "epoch": 0, "loss": 1.5},
        {"step": 2, "eval_loss": 1.7},
    ]
    assert bad.records == [{"step": 1, "epoch": 0, "loss": 2.0}]
    assert said == [
        "warning: bad failed at step 2 (ConnectionError: server went away); it gets no more metrics in this "
        "run, metrics.jsonl has them all"
    ]
    files = tracking.checkpoint_files()
    assert good.flushed == 1 and json.loads(files[CHECKPOINT_FILE]) == {"good": {"run_id": "good-1"}}


def test_a_stopped_run_ends_its_tracker_runs_as_killed_and_a_failed_one_as_failed() -> None:
    stopped, failed = Sink("a"), Sink("b")
    Tracking([stopped], print).abort(RunInterrupted("stopped by signal", exit_code=130))
    Tracking([failed], print).abort(ValueError("nan"))
    assert (stopped.ended, failed.ended) == ("KILLED", "FAILED")


def test_only_jsonl_starts_nothing_and_writes_no_checkpoint_file(tmp_path: Path) -> None:
    config, _ = validate_dict(
        {"data": {"dataset": {"train_file": "t.jsonl"}}, "model": {"name_or_path": "x"}}
    )
    data = config.model_dump(mode="json")  # type: ignore[union-attr]
    tracking = open_tracking(config.tracking, tmp_path, config_data=data, facts=("causal_lm", "f"))  # type: ignore[union-attr]
    assert tracking.sinks == [] and tracking.checkpoint_files() == {} and tracking.describe() == {}


def test_saved_state_of_a_checkpoint(tmp_path: Path) -> None:
    assert saved_state(tmp_path) == {}
    (tmp_path / CHECKPOINT_FILE).write_text('{"mlflow": {"run_id": "r"}}')
    assert saved_state(tmp_path) == {"mlflow": {"run_id": "r"}}
    (tmp_path / CHECKPOINT_FILE).write_text("{cut sh")
    assert saved_state(tmp_path) == {}


def test_flatten_gives_tracker_params() -> None:
    flat = flatten({"a": {"b": 1, "c": [1, 2], "d": None, "e": {}}, "f": "x", "g": True})
    assert flat == {"a.b": 1, "a.c": "[1,2]", "a.d": "null", "a.e": "{}", "f": "x", "g": True}


@pytest.mark.parametrize("rank", ["1", "3"])
def test_other_ranks_log_nothing(rank: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", rank)
    raw = {"data": {"dataset": {"train_file": "t"}}, "model": {"name_or_path": "x"}}
    config, _ = validate_dict({**raw, "tracking": {"report_to": ["tensorboard"]}})
    data = config.model_dump(mode="json")  # type: ignore[union-attr]
    assert open_tracking(config.tracking, tmp_path, config_data=data, facts=("t", "f")).sinks == []  # type: ignore[union-attr]
    assert not (tmp_path / "tensorboard").exists()
