"""The trackers of one run, fanned out: started together, fed every record, finished or aborted together.

``open_tracking`` is all the pipeline calls: it builds the sinks ``tracking.report_to`` lists, reads the
run ids a resumed checkpoint kept (``tracking.json``), and starts them. A failure to start is an error
before training; a failure while logging (a server that went away) is said once and that tracker is
dropped: metrics.jsonl still has every record, and hours of training are not thrown away for a chart.
Only the main process logs (multi-process runs: rank 0).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.run_dir import TRACKER_IDS, RunDir, read_json_or_empty, read_state
from llmft.tracking.base import Final, Resume, RunInfo, SearchLink, Tracker

if TYPE_CHECKING:  # pragma: no cover
    from llmft.config.schema import TrackingConfig

Say = Callable[[str], None]
CHECKPOINT_FILE = TRACKER_IDS
DEFAULT_PROJECT = "llmft"


def is_main_process() -> bool:
    """Rank 0 of a multi-process launch (torchrun/accelerate set RANK), or a single process."""
    return int(os.environ.get("RANK", "0")) == 0


def make_sinks(tracking: TrackingConfig, out: Path) -> list[Tracker]:
    sinks: list[Tracker] = []
    if "tensorboard" in tracking.report_to:
        from llmft.tracking.tensorboard import TensorBoardSink

        sinks.append(TensorBoardSink(Path(tracking.dir) if tracking.dir else RunDir(out).tensorboard_dir))
    if "mlflow" in tracking.report_to:
        from llmft.tracking.mlflow import MlflowSink

        sinks.append(MlflowSink(tracking.uri, tracking.log_model))
    if "wandb" in tracking.report_to:
        from llmft.tracking.wandb import WandbSink

        sinks.append(WandbSink())
    return sinks


def saved_state(checkpoint: Path | None) -> dict[str, dict[str, str]]:
    """What the trackers kept in a checkpoint (nothing for one written without trackers)."""
    return read_json_or_empty(checkpoint / CHECKPOINT_FILE) if checkpoint else {}  # type: ignore[return-value]


class Tracking:
    """The run's started sinks. Empty (and free) when only metrics.jsonl is asked for."""

    def __init__(self, sinks: list[Tracker], say: Say) -> None:
        self.sinks, self.say = sinks, say
        self.last: dict[str, int] = {}  # key → last step logged: an evaluation repeats its step's epoch

    def log(self, record: dict[str, object]) -> None:
        if not self.sinks:
            return
        step = int(record.get("step", 0))  # type: ignore[call-overload]
        record = {k: v for k, v in record.items() if k == "step" or step > self.last.get(k, -1)}
        self.last.update({k: step for k in record if k != "step"})
        for sink in list(self.sinks):
            try:
                sink.log(record)
            except Exception as err:  # noqa: BLE001 - see the module docstring
                self._drop(sink, err, f"at step {record.get('step')}")

    def checkpoint_files(self) -> dict[str, str]:
        """Called as a checkpoint is written: flush (everything up to it is stored), and the run ids."""
        for sink in list(self.sinks):
            try:
                sink.flush()
            except Exception as err:  # noqa: BLE001
                self._drop(sink, err, "while flushing")
        if not self.sinks:
            return {}
        return {CHECKPOINT_FILE: json.dumps({s.name: s.state() for s in self.sinks}, indent=2)}

    def describe(self) -> dict[str, dict[str, str]]:
        """Where each tracker's run is, for run.json and the summary table."""
        return {s.name: s.state() for s in self.sinks}

    def finish(self, metrics: dict[str, float], step: int, out: Path, model_dir: Path | None) -> None:
        for sink in list(self.sinks):
            try:
                sink.finish(Final(dict(metrics), step, out, model_dir))
            except Exception as err:  # noqa: BLE001
                self._drop(sink, err, "while finishing")
        self.sinks = []

    def abort(self, err: BaseException) -> None:
        """The run failed or was stopped: end each tracker run as such (KILLED for a signal)."""
        from llmft.errors import RunInterrupted

        status = "KILLED" if isinstance(err, (RunInterrupted, KeyboardInterrupt)) else "FAILED"
        for sink in self.sinks:
            try:
                sink.abort(status)
            except Exception:  # noqa: BLE001, S110 - the run's own error is the one to show
                pass
        self.sinks = []

    def _drop(self, sink: Tracker, err: BaseException, when: str) -> None:
        self.sinks.remove(sink)
        self.say(
            f"warning: {sink.name} failed {when} ({type(err).__name__}: {err}); it gets no more metrics "
            "in this run, metrics.jsonl has them all"
        )


def open_tracking(
    tracking: TrackingConfig,
    out: Path,
    *,
    config_data: dict[str, object],
    facts: tuple[str, str],
    checkpoint: Path | None = None,
    parent: SearchLink | None = None,
    say: Say = lambda text: None,
) -> Tracking:
    """Start the trackers of ``tracking.report_to`` for the run in ``out``.

    ``config_data``: the run's whole config as plain data, logged (redacted) as the trackers' params.
    ``facts``: (task, data fingerprint). ``checkpoint``: the folder a resume starts from (its tracker run
    ids are continued). ``parent``: the search this run is a trial of.
    """
    if not is_main_process():
        return Tracking([], say)
    sinks = make_sinks(tracking, out)
    if not sinks:
        return Tracking([], say)
    info = run_info(tracking, config_data, out, facts, parent)
    resume = Resume(_step_of(checkpoint), saved_state(checkpoint)) if checkpoint else None
    started: list[Tracker] = []
    try:
        for sink in sinks:
            sink.start(info, resume)
            started.append(sink)
    except BaseException as err:
        Tracking(started, say).abort(err)
        raise
    for sink in started:
        say(f"tracking: {sink.name} → {_where(sink.state())}")
    return Tracking(started, say)


def run_info(
    tracking: TrackingConfig,
    config_data: dict[str, object],
    out: Path,
    facts: tuple[str, str],
    parent: SearchLink | None,
) -> RunInfo:
    from llmft.config.redact import redact
    from llmft.version import __version__

    name = out.resolve().name
    if parent is not None:
        name = "refit" if parent.trial is None else f"trial-{parent.trial:03d}"
    return RunInfo(
        out=out,
        name=tracking.run_name or name,
        project=tracking.project or DEFAULT_PROJECT,
        task=facts[0],
        fingerprint=facts[1],
        version=__version__,
        config=redact(config_data),  # type: ignore[arg-type]
        api_key=tracking.api_key,
        parent=parent,
    )


def _step_of(checkpoint: Path) -> int:
    return int(read_state(checkpoint)["step"])  # type: ignore[call-overload]


def _where(state: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in state.items() if v)
