"""What a search will do, decided once from the config and checked before any trial runs.

``make_plan`` turns a validated ``RunConfig`` into a ``SearchPlan``: the spaces, the metric and its
direction, how many trials, where they go. Every problem is reported at once (``check_search``); the
plan holds only plain data, so it can be sent to worker processes and Ray workers as is.
Nothing here imports torch, optuna or ray.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from llmft.config.schema import RunConfig
from llmft.errors import ConfigError, Problem
from llmft.evaluate.generation import SCORE_NAMES as GENERATION_SCORES
from llmft.hpo.space import Space, parse_space

# Metric names the evaluation writes, after an `eval_` (validation) or `test_` prefix.
HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "precision_macro", "recall_macro", "f1_macro")
LOWER_IS_BETTER = ("loss", "perplexity")
KNOWN_METRICS = tuple(
    f"{split}_{name}"
    for split in ("eval", "test")
    for name in LOWER_IS_BETTER + HIGHER_IS_BETTER + GENERATION_SCORES
)
DEFAULT_TRIALS = 10
GRID_POINTS = 3  # values a float range without a step contributes to a grid
# hpo keys that steer the search but do not change what a trial trains: a resumed search may change them.
RUN_CONTROL = ("enabled", "max_trials", "parallel", "timeout", "refit", "storage", "ray_address", "pruner")


@dataclass(frozen=True)
class SearchPlan:
    """Everything a backend needs; plain data (picklable, JSON-able apart from the spaces)."""

    base: dict[str, object]  # the run config as the user set it, hpo switched off
    spaces: tuple[Space, ...]
    metric: str
    direction: str  # "minimize" or "maximize"
    backend: str
    max_trials: int
    output_dir: Path
    parallel: int = 1
    timeout: float | None = None
    seed: int = 42
    pruner: str = "median"
    search_algorithm: str | None = None
    storage: str | None = None
    ray_address: str | None = None
    study_name: str = "llmft"
    max_reports: int = 100  # evaluations a full trial makes (ASHA's max_t)
    notices: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.spaces]

    @property
    def trials_dir(self) -> Path:
        return self.output_dir / "trials"

    def trial_dir(self, number: int) -> Path:
        return self.trials_dir / f"{number:03d}"

    def better(self, a: float, b: float) -> bool:
        """Whether metric value ``a`` beats ``b``."""
        return a > b if self.direction == "maximize" else a < b

    def fingerprint(self) -> dict[str, object]:
        """What makes two searches the same search: the base config and the search definition."""
        base = {k: v for k, v in self.base.items() if k not in ("output_dir", "hpo")}
        hpo = self.base.get("hpo", {})
        kept = {k: v for k, v in hpo.items() if k not in RUN_CONTROL} if isinstance(hpo, dict) else {}
        return {
            "base": base,
            "hpo": kept,
            "metric": self.metric,
            "direction": self.direction,
            "backend": self.backend,
            "spaces": [s.path + ": " + s.describe() for s in self.spaces],
        }

    def definition(self) -> dict[str, object]:
        """The part several machines sharing one study must agree on (their file paths may differ)."""
        return {
            "metric": self.metric,
            "direction": self.direction,
            "spaces": [s.path + ": " + s.describe() for s in self.spaces],
        }


def metric_direction(metric: str) -> str | None:
    """The natural direction of a metric, or None when its name does not say."""
    name = metric.split("_", 1)[1] if "_" in metric else metric
    if name in LOWER_IS_BETTER:
        return "minimize"
    return "maximize" if name in HIGHER_IS_BETTER + GENERATION_SCORES else None


def _check_metric(config: RunConfig) -> list[Problem]:
    hpo, ds = config.hpo, config.data.dataset
    if hpo.metric not in KNOWN_METRICS:
        near = difflib.get_close_matches(hpo.metric, KNOWN_METRICS, n=3)
        suggestion = " or ".join(near) if near else "e.g. eval_loss, eval_accuracy or eval_f1"
        return [
            Problem("hpo.metric", f"`{hpo.metric}` is not a metric llmft reports", fix=f"use {suggestion}")
        ]
    name = hpo.metric.split("_", 1)[1]
    task = config.model.task
    if name in GENERATION_SCORES and config.evaluation.generate is None:
        return [
            Problem(
                "hpo.metric",
                f"{hpo.metric} is a score of evaluation by generation, which this config does not turn on",
                fix="add `evaluation: {generate: {}}` (scores on the final model), or use eval_loss",
            )
        ]
    if name in HIGHER_IS_BETTER and task in ("causal_lm", "seq2seq_lm"):
        return [
            Problem(
                "hpo.metric",
                f"{hpo.metric} needs a classification task, but model.task is {task}",
                fix="use eval_loss or eval_perplexity",
            )
        ]
    if name == "perplexity" and task == "sequence_classification":
        return [
            Problem(
                "hpo.metric", "perplexity needs a language-model task", fix="use eval_loss or eval_accuracy"
            )
        ]
    has_validation = ds.validation_file or ds.split.validation or ds.validation_fraction > 0
    if hpo.metric.startswith("eval_") and not has_validation:
        return [
            Problem(
                "hpo.metric",
                f"{hpo.metric} is measured on validation data, and there is none "
                "(no validation file or split, validation_fraction is 0)",
                fix="set data.dataset.validation_fraction: 0.1 or a validation_file",
            )
        ]
    if hpo.metric.startswith("test_") and not (ds.test_file or ds.split.test):
        return [
            Problem(
                "hpo.metric",
                f"{hpo.metric} is measured on test data, and there is none",
                fix="set data.dataset.test_file (or split.test), or use an eval_ metric",
            )
        ]
    return []


def _check_direction(config: RunConfig) -> list[Problem]:
    hpo = config.hpo
    natural = metric_direction(hpo.metric)
    if "direction" in hpo.model_fields_set and natural and hpo.direction not in (natural, "auto"):
        return [
            Problem(
                "hpo.direction",
                f"{hpo.direction} {hpo.metric} looks for the worst trial",
                fix=f"set hpo.direction: {natural}",
                severity="warning",
            )
        ]
    return []


def _check_algorithm(config: RunConfig, spaces: list[Space]) -> list[Problem]:
    hpo = config.hpo
    algo = hpo.search_algorithm
    if algo in ("hyperopt", "bayesopt") and hpo.backend != "ray":
        return [
            Problem(
                "hpo.search_algorithm",
                f"{algo} is a Ray Tune search algorithm, and backend is {hpo.backend}",
                fix="set hpo.backend: ray, or use backend optuna (TPE)",
            )
        ]
    if algo == "bayesopt" and any(s.kind == "choice" for s in spaces):
        lists = ", ".join(s.path for s in spaces if s.kind == "choice")
        return [
            Problem(
                "hpo.search_algorithm",
                f"bayesopt searches numeric ranges only, and {lists} is a list",
                fix="use search_algorithm: optuna or hyperopt, or write the space as {low, high}",
            )
        ]
    if algo and hpo.backend == "grid":
        return [
            Problem(
                "hpo.search_algorithm",
                f"{algo} is ignored by the grid backend",
                severity="warning",
                fix="set hpo.backend: optuna or ray to use it",
            )
        ]
    return []


def _check_backend_options(config: RunConfig) -> list[Problem]:
    hpo, tr = config.hpo, config.training
    problems = []
    if hpo.storage and hpo.backend != "optuna":
        problems.append(
            Problem(
                "hpo.storage",
                f"storage is an Optuna setting; the {hpo.backend} backend ignores it",
                severity="warning",
                fix="set hpo.backend: optuna, or remove hpo.storage",
            )
        )
    if hpo.ray_address and hpo.backend != "ray":
        problems.append(
            Problem(
                "hpo.ray_address",
                f"ray_address is ignored by the {hpo.backend} backend",
                severity="warning",
                fix="set hpo.backend: ray, or remove hpo.ray_address",
            )
        )
    prunes = hpo.backend in ("optuna", "ray") and hpo.pruner != "none"
    if prunes and tr.eval_strategy == "no":
        problems.append(
            Problem(
                "hpo.pruner",
                "trials evaluate only at the end (training.eval_strategy is "
                "`no`), so none can be stopped early",
                severity="warning",
                fix="set training.eval_strategy: epoch (or steps with eval_steps)",
            )
        )
    elif prunes and hpo.metric.startswith("test_"):
        problems.append(
            Problem(
                "hpo.pruner",
                f"{hpo.metric} is measured only at the end, so no trial can be stopped early",
                severity="warning",
                fix="optimise an eval_ metric",
            )
        )
    return problems


def check_search(config: RunConfig) -> list[Problem]:
    """Rules of a search beyond the spaces themselves (config/checks.py checks those): errors and warnings."""
    spaces = []
    for name, spec in config.hpo.parameters.items():
        try:
            spaces.append(parse_space(name, spec))
        except (TypeError, ValueError, ArithmeticError):  # reported by config/checks.py
            continue
    return [
        *_check_metric(config),
        *_check_direction(config),
        *_check_algorithm(config, spaces),
        *_check_backend_options(config),
    ]


def _unusable(space: Space) -> str | None:
    """Ranges no value can be drawn from (config/checks.py reports them when a config is loaded)."""
    if space.kind == "choice":
        return None
    if space.low > space.high:
        return "the range is empty"
    if space.log and space.low <= 0:
        return "a log range needs low > 0"
    if space.step is not None and space.step <= 0:
        return "the step must be > 0"
    return None


def grid_size(spaces: tuple[Space, ...] | list[Space]) -> int:
    size = 1
    for space in spaces:
        size *= len(space.grid_values(GRID_POINTS))
    return size


def _trials(config: RunConfig, spaces: list[Space]) -> tuple[int, list[Problem]]:
    hpo = config.hpo
    notes = []
    if hpo.backend == "grid":
        size = grid_size(spaces)
        for s in spaces:
            if s.kind == "float" and not s.step:
                values = ", ".join(f"{v:.3g}" for v in s.grid_values(GRID_POINTS))  # type: ignore[str-format]
                notes.append(
                    Problem(
                        f"hpo.parameters.{s.path}",
                        f"the grid tries {GRID_POINTS} values of this range: {values}",
                        severity="notice",
                    )
                )
        if hpo.max_trials and hpo.max_trials < size:
            notes.append(
                Problem(
                    "hpo.max_trials",
                    f"runs the first {hpo.max_trials} of {size} grid points",
                    severity="notice",
                )
            )
        return min(size, hpo.max_trials or size), notes
    if hpo.max_trials is None:
        notes.append(
            Problem("hpo.max_trials", f"not set: running {DEFAULT_TRIALS} trials", severity="notice")
        )
    return hpo.max_trials or DEFAULT_TRIALS, notes


def _max_reports(config: RunConfig) -> int:
    """How often a full trial evaluates, when the config says (ASHA needs the full length)."""
    tr = config.training
    if tr.eval_strategy == "epoch" and tr.max_steps is None:
        return max(1, math.ceil(tr.num_epochs))
    if tr.eval_strategy == "steps" and tr.max_steps and tr.eval_steps:
        return max(1, tr.max_steps // tr.eval_steps)
    return 100


def base_dict(config: RunConfig) -> dict[str, object]:
    """The config as the user set it (defaults left out, so files stay short), with the search off."""
    data = config.model_dump(mode="json", exclude_unset=True)
    hpo = data.get("hpo")
    data["hpo"] = {**(hpo if isinstance(hpo, dict) else {}), "enabled": False}
    return data


def study_name(config: RunConfig) -> str:
    """Optuna study name: `hpo.study_name` when the schema has it, else named after the output directory,
    so every machine running the same config joins the same study."""
    explicit = getattr(config.hpo, "study_name", None)
    return str(explicit) if explicit else f"llmft-{Path(config.output_dir).name}"


def make_plan(config: RunConfig) -> SearchPlan:
    """The plan, or a ConfigError listing every problem. Warnings and notices travel in ``plan.notices``."""
    hpo = config.hpo
    problems: list[Problem] = []
    if not hpo.parameters:
        problems.append(
            Problem(
                "hpo.parameters",
                "no parameters to search",
                fix="add e.g. `training.learning_rate: [1e-4, 3e-4]` under hpo.parameters",
            )
        )
    spaces: list[Space] = []
    for name, spec in hpo.parameters.items():
        try:
            space = parse_space(name, spec)
        except (TypeError, ValueError, ArithmeticError) as err:
            problems.append(Problem(f"hpo.parameters.{name}", f"cannot read the space: {err}"))
            continue
        if _unusable(space):
            problems.append(Problem(f"hpo.parameters.{name}", f"{_unusable(space)}: {space.describe()}"))
        spaces.append(space)
    problems += check_search(config)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConfigError("the search cannot start", problems=errors)
    direction = str(hpo.direction)
    if direction == "auto" or "direction" not in hpo.model_fields_set:  # not written: the metric decides
        direction = metric_direction(hpo.metric) or ("minimize" if direction == "auto" else direction)
    max_trials, notes = _trials(config, spaces)
    return SearchPlan(
        base=base_dict(config),
        spaces=tuple(spaces),
        metric=hpo.metric,
        direction=direction,
        backend=hpo.backend,
        max_trials=max_trials,
        output_dir=Path(config.output_dir).resolve(),
        parallel=hpo.parallel,
        timeout=hpo.timeout,
        seed=hpo.seed if hpo.seed is not None else config.seed,
        pruner=hpo.pruner,
        search_algorithm=hpo.search_algorithm,
        storage=hpo.storage,
        ray_address=hpo.ray_address,
        study_name=study_name(config),
        max_reports=_max_reports(config),
        notices=tuple(problems + notes),
    )


def threads_per_trial(parallel: int) -> int:
    """CPU threads each of ``parallel`` concurrent trials gets, so they do not fight over the cores."""
    return max(1, (os.cpu_count() or 1) // max(parallel, 1))


def digest(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
