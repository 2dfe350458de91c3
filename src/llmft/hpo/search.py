"""`llmft hpo`, top to bottom: plan and check → run the trials → results → best config → refit.

Read this file to know what a search does. The backends (grid.py, optuna.py, ray.py) only decide which
values each trial tries and when a trial stops early; every trial is the real training pipeline
(trial.py), and every backend's trials end up as the same records, files and plots (report.py).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmft.config.schema import RunConfig
from llmft.errors import ConfigError, Problem, TrainingError
from llmft.hpo.plan import SearchPlan, make_plan
from llmft.hpo.progress import SearchProgress
from llmft.hpo.trial import TrialRecord, trial_dict, validated
from llmft.tracking.base import SearchLink
from llmft.tracking.search import finish_search, start_search

Say = Callable[[str], None]
# What a search writes into its output directory (removed by --overwrite; trials/ holds one run per trial).
SEARCH_FILES = (
    "trials",
    "ray",
    "plots",
    "hpo.db",
    "search.json",
    "hpo_results.csv",
    "hpo_results.json",
    "best_config.yaml",
    "tracking.json",
)


@dataclass
class SearchResult:
    """The trials (best first), the best one, and where the files are."""

    plan: SearchPlan
    trials: list[TrialRecord]
    best: TrialRecord | None
    output_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    refit_metrics: dict[str, float] | None = None


def _stderr(text: str) -> None:
    sys.stderr.write(text + "\n")


def run_search(
    config: RunConfig,
    *,
    say: Say = _stderr,
    progress: bool = True,
    overwrite: bool = False,
    shown: Sequence[Problem] = (),
) -> SearchResult:
    """Search ``config.hpo.parameters``; each trial trains ``config`` with its values in OUTPUT/trials/NNN.

    ``overwrite`` deletes an earlier search in the output directory (else it is resumed); warnings in
    ``shown`` (already printed when the config was loaded) are not said again.
    Raises ConfigError before any trial runs when the search is ill-defined, EnvironmentProblem when the
    backend's package is missing, and TrainingError when no trial completed (after writing the results).
    """
    from llmft.hpo.report import best_trial, sort_trials, write_results

    plan = make_plan(config)  # every problem at once, before any trial runs
    said = {(p.path, p.message) for p in shown}
    for notice in plan.notices:
        if (notice.path, notice.message) not in said:
            say(f"{notice.severity}: {notice.render()}")
    backend = _backend(plan)  # a missing optional package stops here, before any trial
    _claim_output_dir(plan, overwrite)
    link = start_search(config.tracking, config.hpo, plan.output_dir, say)  # the trials' MLflow parent run
    say(
        f"search: {plan.backend}, {plan.max_trials} trials ({plan.parallel} at a time), "
        f"{plan.direction} {plan.metric}, in {plan.output_dir}"
    )
    with SearchProgress(plan, say, enabled=progress) as events:
        records = backend(plan, events)
    best = best_trial(records, plan)
    files = write_results(plan, records, best)
    _finish_tracking(link, plan, records, best)
    plots = _plots(plan, records, say)
    result = SearchResult(plan, sort_trials(records, plan), best, plan.output_dir, files, plots)
    if best is None:
        raise TrainingError(
            f"no trial completed ({_outcomes(records)}); results are in {files['csv']}",
            fix=_first_error(records),
        )
    say(f"best: trial {best.number}, {plan.metric}={best.value:.6g}; its config is {files['best_config']}")
    if config.hpo.refit:
        result.refit_metrics = refit(plan, best, say=say, progress=progress, link=link)
    return result


def _finish_tracking(
    link: SearchLink | None, plan: SearchPlan, records: list[TrialRecord], best: TrialRecord | None
) -> None:
    """The search's tracker runs end: trial states, the best trial tagged (tracking/search.py)."""
    outcomes = [(r.number, r.state, r.value) for r in records]
    chosen = (best.number, plan.metric, float(best.value)) if best is not None else None
    finish_search(link, plan.output_dir, outcomes, chosen)


def _backend(plan: SearchPlan) -> Callable[[SearchPlan, SearchProgress], list[TrialRecord]]:
    """The backend's runner; its optional package is imported now, so a missing one stops the search early."""
    if plan.backend == "optuna":
        from llmft.hpo import optuna as optuna_backend

        optuna_backend.load_optuna()
        return optuna_backend.run_optuna
    if plan.backend == "ray":
        from llmft.hpo import ray as ray_backend

        ray_backend.require_packages(plan)
        return ray_backend.run_ray
    from llmft.hpo.grid import run_local

    return run_local


def _claim_output_dir(plan: SearchPlan, overwrite: bool) -> None:
    """Start a search, or resume the same one; refuse to mix trials of a different search into the dir."""
    out = plan.output_dir
    marker = out / "search.json"
    if overwrite:
        for name in SEARCH_FILES:
            target = out / name
            if name == "hpo.db" and plan.storage:  # a user's own database is not ours to delete
                continue
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    mine = plan.fingerprint()
    if marker.exists():
        theirs = json.loads(marker.read_text(encoding="utf-8"))
        changed = _changed(theirs, mine)
        if changed:
            raise ConfigError(
                f"{out} holds a search with other settings ({', '.join(changed[:6])} differ); "
                "its trials cannot be mixed with this one's",
                fix="pass --overwrite to start over, or set another output_dir",
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(mine, indent=2, default=str) + "\n", encoding="utf-8")


def _changed(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted paths where two nested dicts differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _changed(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    same = json.dumps(old, default=str) == json.dumps(new, default=str)
    return [] if same else [prefix.removeprefix("base.")]


def _plots(plan: SearchPlan, records: list[TrialRecord], say: Say) -> list[Path]:
    from llmft.hpo.plots import plots_available, write_plots

    if not plots_available():
        say("notice: plots skipped: matplotlib is not installed (pip install 'llmft[optuna]' or matplotlib)")
        return []
    return write_plots(plan, records)


def _outcomes(records: list[TrialRecord]) -> str:
    states = [r.state for r in records]
    counts = [f"{states.count(s)} {s}" for s in ("failed", "pruned", "running") if s in states]
    return ", ".join(counts) or "no trials"


def _first_error(records: list[TrialRecord]) -> str | None:
    errors = [r for r in records if r.error]
    return f"trial {errors[0].number} failed with: {errors[0].error}" if errors else None


def refit(
    plan: SearchPlan, best: TrialRecord, *, say: Say, progress: bool, link: SearchLink | None = None
) -> dict[str, float]:
    """Train the best config once more as the run's model (OUTPUT/model), on all the training rows: when
    the search carved its validation rows off the training data, the refit trains on them too."""
    from llmft.pipeline import run

    data = trial_dict(plan, best.params, plan.output_dir)
    dataset = data.setdefault("data", {}).setdefault("dataset", {})  # type: ignore[union-attr]
    split = dataset.get("split") if isinstance(dataset.get("split"), dict) else {}  # type: ignore[union-attr]
    if not dataset.get("validation_file") and not split.get("validation"):  # type: ignore[union-attr]
        dataset["validation_fraction"] = 0.0  # type: ignore[index]
        say("refit: training on all training rows (the search held some out for validation)")
    config = validated(data)
    result = run(config, say=say, overwrite=True, progress=progress, search_link=link)
    say(f"refit: the best config's model is in {result.output_dir / 'model'}")
    return result.metrics
