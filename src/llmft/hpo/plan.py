"""What a search will do, decided once from the config and checked before any trial runs.

``make_plan`` turns a validated ``RunConfig`` into a ``SearchPlan``: the spaces, the metric and its
direction, how many trials, where they go. Every problem is reported at once (``check_search``); the
plan holds only plain data, so it can be sent to worker processes and Ray workers as is.
Nothing here imports torch, optuna or ray.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from llmft.config.schema import RunConfig
from llmft.config.search_checks import check_search, metric_direction  # noqa: F401 - re-exported
from llmft.config.space import Space, parse_space
from llmft.errors import ConfigError, Problem
from llmft.evaluate.best import Best

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
        """Whether metric value ``a`` beats ``b`` (the rule early stopping and the best checkpoint use)."""
        return Best.of(self.metric, self.direction).beats(a, b)

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
