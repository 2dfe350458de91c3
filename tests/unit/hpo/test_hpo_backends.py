"""Search backends, results and resuming, with the training pipeline replaced by a fast fake.

The fake reads the trial's config and "trains" in microseconds: the learning rate decides the metric,
evaluations are reported every 2 of 10 steps (so pruners can act), and chosen values raise or go NaN.
The real pipeline runs in tests/integration/test_hpo_*.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmft import pipeline
from llmft.config.load import load_config
from llmft.config.schema import RunConfig
from llmft.errors import ConfigError, EnvironmentProblem, RunInterrupted, TrainingError
from llmft.hpo.search import run_search

GOOD, BAD, BROKEN, NAN, CTRL_C = 5e-3, 1e-7, 0.5, 0.25, 0.125


class FakeTrainer:
    """Stands in for llmft.pipeline.run; records which learning rates it trained."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.interrupt_once = True

    def __call__(self, config: RunConfig, *, say, overwrite, progress, on_evaluate, search_link=None):  # noqa: ANN001, ANN204
        lr = config.training.learning_rate
        self.calls.append(lr)
        out = Path(config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if lr == BROKEN:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if lr == CTRL_C and self.interrupt_once:  # what the pipeline raises on Ctrl-C, after a checkpoint
            self.interrupt_once = False
            raise RunInterrupted("stopped by signal at step 3; checkpoint written", exit_code=130)
        final = 0.95 if lr == GOOD else 0.5 + config.model.adapter.r / 100  # type: ignore[union-attr]
        for step in range(2, 11, 2):
            accuracy = 0.5 + (final - 0.5) * step / 10
            on_evaluate(step, {"eval_loss": 1 - accuracy, "eval_accuracy": accuracy})
        metrics = {"eval_loss": 1 - final, "eval_accuracy": float("nan") if lr == NAN else final}
        (out / "run.json").write_text(json.dumps({"steps": 10}))
        (out / "eval_results.json").write_text(json.dumps(metrics))
        return pipeline.RunResult(metrics, out)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTrainer:
    """The fake trainer, and no plots (matplotlib takes longer than the fake trials; one test draws them)."""
    from llmft.hpo import plots

    trainer = FakeTrainer()
    monkeypatch.setattr(pipeline, "run", trainer)
    monkeypatch.setattr(plots, "plots_available", lambda: False)
    return trainer


def make(tmp_path: Path, hpo: dict, name: str = "search") -> RunConfig:
    raw = {
        "output_dir": str(tmp_path / name),
        "data": {"dataset": {"train_file": str(tmp_path / "train.jsonl")}},
        "model": {"name_or_path": str(tmp_path / "model"), "adapter": {"r": 8}},
        "training": {"eval_strategy": "steps", "eval_steps": 2, "max_steps": 10},
        "hpo": {"enabled": True, "metric": "eval_accuracy", **hpo},
    }
    path = tmp_path / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def quiet(config: RunConfig, **kwargs: object):  # noqa: ANN201
    lines: list[str] = []
    result = run_search(config, say=lines.append, progress=False, **kwargs)  # type: ignore[arg-type]
    result.lines = lines  # type: ignore[attr-defined]
    return result


GRID = {"parameters": {"learning_rate": [BAD, GOOD], "r": [4, 8]}}


# --------------------------------------------------------------------------------------------- grid
def test_grid_runs_every_combination_and_writes_results(fake: FakeTrainer, tmp_path: Path) -> None:
    result = quiet(make(tmp_path, GRID))
    assert [t.number for t in sorted(result.trials, key=lambda t: t.number)] == [0, 1, 2, 3]
    assert [t.params for t in sorted(result.trials, key=lambda t: t.number)] == [
        {"training.learning_rate": lr, "model.adapter.r": r} for lr in (BAD, GOOD) for r in (4, 8)
    ]
    assert result.best is not None and result.best.params["training.learning_rate"] == GOOD
    assert result.trials[0] is result.best  # sorted best first
    out = tmp_path / "search"
    assert {p.name for p in out.iterdir()} >= {
        "trials",
        "search.json",
        "hpo_results.csv",
        "hpo_results.json",
        "best_config.yaml",
    }
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["000", "001", "002", "003"]
    saved = json.loads((out / "hpo_results.json").read_text())
    assert saved["best_trial"] == result.best.number and len(saved["trials"]) == 4
    header = (out / "hpo_results.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["trial", "state", "eval_accuracy", "training.learning_rate", "model.adapter.r"]


def test_best_config_is_a_plain_run_config(fake: FakeTrainer, tmp_path: Path) -> None:
    result = quiet(make(tmp_path, GRID))
    best = load_config(result.files["best_config"])
    assert best.hpo.enabled is False
    assert best.output_dir == str(tmp_path / "search" / "best")
    assert best.training.learning_rate == GOOD
    assert best.model.adapter.r == result.best.params["model.adapter.r"]  # type: ignore[union-attr]


def test_a_failing_trial_is_recorded_and_the_search_goes_on(fake: FakeTrainer, tmp_path: Path) -> None:
    result = quiet(make(tmp_path, {"parameters": {"learning_rate": [BROKEN, GOOD, NAN]}}))
    states = {t.params["training.learning_rate"]: (t.state, t.error) for t in result.trials}
    assert states[GOOD] == ("complete", None)
    assert states[BROKEN] == ("failed", "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert states[NAN] == ("failed", "eval_accuracy is nan")
    assert (tmp_path / "search" / "trials" / "000" / "error.txt").read_text().startswith("Traceback")
    assert any(line.startswith("trial 0 failed") for line in result.lines)


def test_when_every_trial_fails_the_results_are_written_and_the_error_names_the_first(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    with pytest.raises(TrainingError) as err:
        quiet(make(tmp_path, {"parameters": {"learning_rate": [BROKEN]}}))
    assert "no trial completed (1 failed)" in err.value.message
    assert "CUDA out of memory" in (err.value.fix or "")
    assert (tmp_path / "search" / "hpo_results.csv").exists()


def test_a_metric_the_run_does_not_report_fails_the_trial_with_the_reported_names(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    with pytest.raises(TrainingError):
        quiet(make(tmp_path, {"metric": "eval_f1", "parameters": {"learning_rate": [GOOD]}}))
    record = json.loads((tmp_path / "search" / "trials" / "000" / "trial.json").read_text())
    assert record["error"] == "the run did not report eval_f1; it reported: eval_accuracy, eval_loss"


def test_an_invalid_combination_fails_only_its_trial(fake: FakeTrainer, tmp_path: Path) -> None:
    result = quiet(make(tmp_path, {"parameters": {"training.save_strategy": ["no", "steps"]}}))
    states = {t.params["training.save_strategy"]: (t.state, t.error) for t in result.trials}
    assert states["no"] == ("complete", None)
    assert states["steps"][0] == "failed"
    assert "save_strategy is `steps` but save_steps is not set" in states["steps"][1]  # type: ignore[operator]


def test_grid_resumes_without_rerunning_finished_trials(fake: FakeTrainer, tmp_path: Path) -> None:
    quiet(make(tmp_path, {**GRID, "max_trials": 2}))
    assert len(fake.calls) == 2
    result = quiet(make(tmp_path, {**GRID, "max_trials": 4}))
    assert len(fake.calls) == 4 and len(result.trials) == 4


def test_resuming_with_other_settings_is_refused_unless_overwritten(
    fake: FakeTrainer,
    tmp_path: Path,
) -> None:
    quiet(make(tmp_path, GRID))
    changed = make(tmp_path, {**GRID, "metric": "eval_loss"})
    with pytest.raises(ConfigError, match="holds a search with other settings") as err:
        quiet(changed)
    assert "hpo.metric" in err.value.message
    assert len(quiet(changed, overwrite=True).trials) == 4


@pytest.mark.parametrize("backend", ["grid", "optuna"])
def test_ctrl_c_stops_the_search_and_the_interrupted_trial_runs_again_on_resume(
    backend: str, fake: FakeTrainer, tmp_path: Path
) -> None:
    values = [CTRL_C, GOOD] if backend == "grid" else [CTRL_C]  # optuna: the same value every trial
    extra = {} if backend == "grid" else {"search_algorithm": "random", "pruner": "none"}
    hpo = {"backend": backend, "max_trials": 2, "parameters": {"learning_rate": values}, **extra}
    cfg = make(tmp_path, hpo)
    with pytest.raises(RunInterrupted) as err:
        quiet(cfg)
    assert err.value.exit_code == 130
    assert err.value.message == "search stopped by signal during trial 0; finished trials are kept"
    assert fake.calls == [CTRL_C]
    result = quiet(cfg)  # resumed: the interrupted values run again, and the search completes
    assert len(fake.calls) == 3 and fake.calls[1] == CTRL_C and len(result.trials) == 2
    assert {t.state for t in result.trials} == {"complete"}


def test_the_first_trial_runs_even_past_the_timeout(fake: FakeTrainer, tmp_path: Path) -> None:
    result = quiet(make(tmp_path, {**GRID, "timeout": 1e-9}))
    assert len(result.trials) == 1
    assert "hpo.timeout reached: 3 trials not started" in result.lines


# ------------------------------------------------------------------------------------------- random
def test_random_trials_are_seeded_and_inside_their_spaces(fake: FakeTrainer, tmp_path: Path) -> None:
    space = {
        "backend": "random",
        "max_trials": 5,
        "parameters": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "r": ["int", 4, 16]},
    }
    first = quiet(make(tmp_path, space, "a"))
    second = quiet(make(tmp_path, space, "b"))
    params = sorted((t.number, t.params) for t in first.trials)
    assert params == sorted((t.number, t.params) for t in second.trials)
    assert all(
        1e-4 <= p["training.learning_rate"] <= 1e-2 and 4 <= p["model.adapter.r"] <= 16  # type: ignore[operator]
        for _, p in params
    )
    assert len({p["training.learning_rate"] for _, p in params}) == 5


@pytest.mark.slow
def test_parallel_local_trials_run_in_worker_processes(tmp_path: Path) -> None:
    """Spawned workers cannot see a monkeypatched pipeline: a config error makes every trial fail fast."""
    cfg = make(tmp_path, {"parameters": {"learning_rate": [1e-3, 2e-3, 3e-3]}, "parallel": 2})
    with pytest.raises(TrainingError, match=r"no trial completed \(3 failed\)"):
        quiet(cfg)


# ------------------------------------------------------------------------------------------- optuna
OPTUNA = {"backend": "optuna", "max_trials": 6, "parameters": {"learning_rate": [GOOD, BAD]}}


def test_optuna_prunes_bad_trials_early(fake: FakeTrainer, tmp_path: Path) -> None:
    result = quiet(make(tmp_path, OPTUNA))
    assert len(result.trials) == 6
    pruned = [t for t in result.trials if t.state == "pruned"]
    complete = [t for t in result.trials if t.state == "complete"]
    assert pruned and complete
    assert all(t.params["training.learning_rate"] == BAD for t in pruned)
    assert max(t.steps for t in pruned) < min(t.steps for t in complete)  # type: ignore[type-var]
    assert (tmp_path / "search" / "hpo.db").exists()


def test_optuna_resumes_from_its_database(fake: FakeTrainer, tmp_path: Path) -> None:
    quiet(make(tmp_path, {**OPTUNA, "max_trials": 2}))
    assert len(fake.calls) == 2
    result = quiet(make(tmp_path, {**OPTUNA, "max_trials": 4}))
    assert len(fake.calls) == 4
    assert sorted(t.number for t in result.trials) == [0, 1, 2, 3]


def test_optuna_records_failures_and_goes_on(fake: FakeTrainer, tmp_path: Path) -> None:
    result = quiet(
        make(
            tmp_path,
            {
                **OPTUNA,
                "pruner": "none",
                "search_algorithm": "random",
                "parameters": {"learning_rate": [GOOD, BROKEN]},
            },
        )
    )
    failed = [t for t in result.trials if t.state == "failed"]
    assert failed and all("CUDA out of memory" in (t.error or "") for t in failed)
    assert len(result.trials) == 6


@pytest.mark.filterwarnings("ignore:Heartbeat of storage", "ignore::optuna.exceptions.ExperimentalWarning")
def test_a_trial_left_running_by_a_dead_process_is_retried(fake: FakeTrainer, tmp_path: Path) -> None:
    import optuna

    from llmft.hpo.optuna import open_study
    from llmft.hpo.plan import make_plan

    cfg = make(tmp_path, {**OPTUNA, "max_trials": 2})
    plan = make_plan(cfg)
    (tmp_path / "search").mkdir()
    study = open_study(plan)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    orphan = study.ask({"training.learning_rate": optuna.distributions.CategoricalDistribution([GOOD, BAD])})
    import socket

    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", int(dead.stdout))
    result = quiet(cfg)
    states = {t.number: t.state.name for t in study.get_trials()}
    assert states[0] == "FAIL"  # the orphan: failed, and its value tried again
    assert study.get_trials()[1].user_attrs.get("retry_of") == 0
    assert sorted(t.number for t in result.trials) == [1, 2]
    assert any("interrupted in an earlier session" in line for line in result.lines)


def test_a_shared_study_must_search_the_same_space(fake: FakeTrainer, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    quiet(make(tmp_path, {**OPTUNA, "max_trials": 1, "storage": storage}, "search"))
    other_space = {"learning_rate": [1e-3, 1e-2]}
    other = make(tmp_path, {**OPTUNA, "storage": storage, "parameters": other_space}, "x/search")
    with pytest.raises(ConfigError, match="searches something else"):
        quiet(other)


# --------------------------------------------------------------------------------- optional packages
@pytest.mark.parametrize(("backend", "extra"), [("optuna", "llmft[optuna]"), ("ray", "llmft[ray]")])
def test_a_missing_backend_package_names_the_extra(
    backend: str, extra: str, fake: FakeTrainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, backend, None)
    monkeypatch.setitem(sys.modules, f"{backend}.tune", None)
    with pytest.raises(EnvironmentProblem) as err:
        quiet(make(tmp_path, {**GRID, "backend": backend}))
    assert f"hpo.backend {backend} needs the" in err.value.message
    assert err.value.fix == f"pip install '{extra}'"
    assert not (tmp_path / "search" / "trials").exists()  # nothing ran


def test_a_missing_search_algorithm_package_is_named_before_ray_starts(
    fake: FakeTrainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ray.tune")
    monkeypatch.setitem(sys.modules, "hyperopt", None)
    with pytest.raises(EnvironmentProblem) as err:
        quiet(make(tmp_path, {**GRID, "backend": "ray", "search_algorithm": "hyperopt"}))
    assert err.value.message.startswith("search_algorithm hyperopt needs the `hyperopt` package")
    assert err.value.fix == "pip install hyperopt"
    assert not (tmp_path / "search").exists()


def test_plots_are_skipped_with_a_notice_without_matplotlib(
    fake: FakeTrainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmft.hpo import plots

    monkeypatch.setattr(plots, "plots_available", lambda: False)
    result = quiet(make(tmp_path, GRID))
    assert result.plots == []
    assert any(line.startswith("notice: plots skipped: matplotlib is not installed") for line in result.lines)


def test_plots_show_the_metric_over_time_and_against_each_parameter(
    fake: FakeTrainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from llmft.hpo import plots

    monkeypatch.setattr(plots, "plots_available", lambda: True)
    result = quiet(make(tmp_path, GRID))
    assert sorted(p.name for p in result.plots) == [
        "metric_over_time.png",
        "metric_vs_model.adapter.r.png",
        "metric_vs_training.learning_rate.png",
    ]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in result.plots)


def test_progress_counts_and_best_so_far(fake: FakeTrainer, tmp_path: Path) -> None:
    from llmft.hpo.plan import make_plan
    from llmft.hpo.progress import SearchProgress
    from llmft.hpo.trial import TrialRecord

    plan = make_plan(make(tmp_path, GRID))
    lines: list[str] = []
    with SearchProgress(plan, lines.append, enabled=False) as events:
        events.started(0)
        events.started(1)
        events.finished_trial(TrialRecord(0, {"training.learning_rate": GOOD}, "complete", 0.9, steps=10))
        events.finished_trial(TrialRecord(1, {"training.learning_rate": BAD}, "failed", error="boom"))
        events.started(2)
        assert events.stats() == "2 done, 1 running, 1 failed, 0 pruned | best eval_accuracy=0.9 (trial 0)"
    assert lines[0].endswith("* best so far")
    assert lines[1] == "trial 1 failed (training.learning_rate=1e-07): boom"
    assert math.isclose(events.best.value, 0.9)  # type: ignore[union-attr, arg-type]
