"""One trial: the base config with the trial's values, trained by the real pipeline in ``OUTPUT/trials/NNN``.

A trial never raises for a bad outcome. Whatever goes wrong (an invalid combination of values, a NaN
loss, out of memory, any exception) is caught and becomes a ``failed`` record with the error's text,
so the search goes on. Being pruned is an outcome too. Only a stop signal (Ctrl-C, SIGTERM) goes
through: it stops the search, which resumes when started again. The record is written to ``trial.json`` when
the trial starts and again when it ends, so a killed search leaves an honest trail.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmft.atomic import write_atomic
from llmft.config.schema import RunConfig
from llmft.errors import ConfigError, LlmftError, RunInterrupted
from llmft.hpo.plan import SearchPlan
from llmft.run_dir import TRIAL_ERROR, TRIAL_LOG, TRIAL_RECORD, RunDir, read_json
from llmft.tracking.search import read_link

STATES = ("running", "complete", "pruned", "failed")
Report = Callable[[int, dict[str, float]], None]


@dataclass
class TrialRecord:
    """What one trial tried and what came of it. ``value`` is the searched metric (for a pruned trial, its
    last reported value)."""

    number: int
    params: dict[str, object]
    state: str = "running"
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    steps: int | None = None
    error: str | None = None
    started: float | None = None  # unix seconds
    finished: float | None = None
    trial_dir: str | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.started is None or self.finished is None else self.finished - self.started

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "duration_s": self.duration_s}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TrialRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)  # type: ignore[arg-type]


class Pruned(Exception):  # noqa: N818 - an outcome, not an error
    """Raised from the evaluation hook to stop a trial that the pruner or scheduler gave up on."""

    def __init__(self, step: int, value: float | None) -> None:
        super().__init__(f"pruned at step {step}")
        self.step = step
        self.value = value


class TrialFailed(Exception):  # noqa: N818 - carries the trial's own error text to the backend
    """A failed trial, re-raised so Optuna and Ray record the failure; the text is the trial's error."""


def set_path(data: dict[str, object], path: str, value: object) -> None:
    """Set a dotted config path, creating sections on the way (the same rule as command-line overrides)."""
    from llmft.config.load import _set

    _set(data, tuple(path.split(".")), value)


def trial_dict(plan: SearchPlan, params: dict[str, object], output_dir: Path | str) -> dict[str, object]:
    """The base config with the trial's values and its own output directory (the search switched off)."""
    data = copy.deepcopy(plan.base)
    for path, value in params.items():
        set_path(data, path, copy.deepcopy(value))
    data["output_dir"] = str(output_dir)
    return data


def validated(data: dict[str, object]) -> RunConfig:
    """A RunConfig from a trial dict; a combination the schema or the cross-section checks refuse raises."""
    from llmft.config.load import validate_dict

    config, problems = validate_dict(data)
    errors = [p for p in problems if p.severity == "error"]
    if config is None or errors:
        raise ConfigError("this combination of values is not a valid config", problems=errors)
    return config


def describe_error(err: BaseException) -> str:
    """One readable line (or a few, for a config's problems): what a results table can show."""
    if isinstance(err, LlmftError):
        return err.render()
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def write_record(record: TrialRecord) -> None:
    if not record.trial_dir:
        return
    text = json.dumps(record.to_dict(), indent=2, default=str) + "\n"
    write_atomic(Path(record.trial_dir) / TRIAL_RECORD, text)


def read_record(trial_dir: Path) -> TrialRecord | None:
    try:
        return TrialRecord.from_dict(json.loads((trial_dir / TRIAL_RECORD).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _finish_ok(record: TrialRecord, plan: SearchPlan, metrics: dict[str, float], out: Path) -> None:
    record.metrics = {k: float(v) for k, v in metrics.items()}
    try:
        record.steps = int(read_json(RunDir(out).record_file)["steps"])  # type: ignore[index]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = metrics.get(plan.metric)
    if value is None:
        reported = ", ".join(sorted(k for k in metrics if not k.endswith(("_rows", "_tokens"))))
        record.state = "failed"
        record.error = f"the run did not report {plan.metric}; it reported: {reported}"
    elif not math.isfinite(float(value)):
        record.state, record.error, record.value = "failed", f"{plan.metric} is {value}", None
    else:
        record.state, record.value = "complete", float(value)


def run_trial(
    plan: SearchPlan, number: int, params: dict[str, object], *, report: Report | None = None
) -> TrialRecord:
    """Train one trial; ``report(step, metrics)`` gets each evaluation and may raise ``Pruned``."""
    from llmft import pipeline

    out = plan.trial_dir(number)
    out.mkdir(parents=True, exist_ok=True)
    record = TrialRecord(number, dict(params), started=time.time(), trial_dir=str(out))
    write_record(record)

    def on_evaluate(step: int, metrics: dict[str, float]) -> None:
        record.steps = step
        value = metrics.get(plan.metric)
        record.value = float(value) if value is not None else record.value
        if report is not None:
            report(step, metrics)

    log = out / TRIAL_LOG

    def say(text: str) -> None:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")

    try:
        config = validated(trial_dict(plan, params, out))
        link = read_link(plan.output_dir, number)  # the search's tracker runs (written by the search)
        result = pipeline.run(
            config, say=say, overwrite=True, progress=False, on_evaluate=on_evaluate, search_link=link
        )
        _finish_ok(record, plan, result.metrics, out)
        del result
    except Pruned as stop:
        record.state, record.steps, record.value = "pruned", stop.step, stop.value
    except SystemExit as stop:  # exit 0: how Ray Tune ends a trial its scheduler stopped (inside the report)
        if stop.code in (0, None):
            record.state = "pruned"
        raise
    except RunInterrupted as err:  # Ctrl-C/SIGTERM: the user stops the search, not just this trial
        record.error = "interrupted"
        raise RunInterrupted(
            f"search stopped by signal during trial {number}; finished trials are kept",
            exit_code=err.exit_code,
            fix="run the same command again to resume the search",
        ) from None
    except Exception as err:  # noqa: BLE001 - any failure is the trial's outcome, and the search goes on
        record.state, record.error, record.value = "failed", describe_error(err), None
        (out / TRIAL_ERROR).write_text(traceback.format_exc(), encoding="utf-8")
    finally:
        record.finished = time.time()
        write_record(record)
        _release_memory()
    return record


def _release_memory() -> None:
    """Trials run one after another in one process: give back what the last one held (GPU memory too)."""
    gc.collect()
    torch = sys.modules.get("torch")  # not imported when nothing trained (a config error)
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
