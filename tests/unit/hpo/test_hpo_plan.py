"""The search plan: spaces, metric, direction, trial counts, and every problem found before a trial runs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from llmft.config.load import load_config
from llmft.config.schema import RunConfig
from llmft.config.space import parse_space
from llmft.errors import ConfigError
from llmft.hpo.plan import check_search, make_plan, metric_direction

REPO = Path(__file__).resolve().parents[3]


def config(hpo: dict, **sections: object) -> RunConfig:
    raw = {
        "output_dir": "/tmp/llmft-plan-test/search",
        "data": {"dataset": {"train_file": "train.jsonl"}},
        "model": {"name_or_path": "some-model"},
        "hpo": {"enabled": True, **hpo},
        **sections,
    }
    return RunConfig.model_validate(raw)


def messages(cfg: RunConfig) -> list[tuple[str, str, str]]:
    return [(p.path, p.severity, p.message) for p in check_search(cfg)]


# ------------------------------------------------------------------------------------------- spaces
@pytest.mark.parametrize("spec", [["float", 1e-5, 1e-3, "log"], {"low": 1e-5, "high": 1e-3, "log": True}])
def test_log_float_samples_stay_in_range_and_spread_over_decades(spec: object) -> None:
    space = parse_space("learning_rate", spec)
    rng = random.Random(0)
    values = [space.sample(rng) for _ in range(400)]
    assert all(1e-5 <= v <= 1e-3 for v in values)  # type: ignore[operator]
    assert sum(v < 1e-4 for v in values) > 120  # type: ignore[operator]  # log-uniform: half below the middle decade


def test_int_and_choice_samples() -> None:
    rng = random.Random(1)
    r = parse_space("r", ["int", 4, 32, 4])
    assert {r.sample(rng) for _ in range(200)} == {4, 8, 12, 16, 20, 24, 28, 32}
    choice = parse_space("model.adapter.target_modules", [["query"], ["value"]])
    assert {tuple(choice.sample(rng)) for _ in range(50)} == {("query",), ("value",)}  # type: ignore[arg-type]


def test_describe_reads_like_the_config() -> None:
    assert parse_space("lr", ["float", 1e-5, 1e-3, "log"]).describe() == "float in [1e-05, 0.001] log"
    assert parse_space("r", [4, 8]).describe() == "one of 4, 8"
    assert parse_space("r", {"low": 4, "high": 16, "step": 4}).describe() == "int in [4, 16] step 4"


# ---------------------------------------------------------------------------------- metric/direction
def test_direction_follows_the_metric_when_not_written() -> None:
    plan = make_plan(config({"metric": "eval_accuracy", "parameters": {"learning_rate": [1e-4, 1e-3]}}))
    assert plan.direction == "maximize"
    plan = make_plan(config({"metric": "eval_loss", "parameters": {"learning_rate": [1e-4, 1e-3]}}))
    assert plan.direction == "minimize"
    assert metric_direction("eval_f1_macro") == "maximize"


def test_a_written_direction_is_kept_but_a_contradiction_is_warned_about() -> None:
    cfg = config({"metric": "eval_accuracy", "direction": "minimize", "parameters": {"r": [4, 8]}})
    assert make_plan(cfg).direction == "minimize"
    assert messages(cfg) == [("hpo.direction", "warning", "minimize eval_accuracy looks for the worst trial")]


def test_unknown_metric_gets_the_nearest_names() -> None:
    cfg = config({"metric": "eval_acuracy", "parameters": {"r": [4, 8]}})
    with pytest.raises(ConfigError) as err:
        make_plan(cfg)
    [problem] = err.value.problems
    assert (problem.path, problem.message) == ("hpo.metric", "`eval_acuracy` is not a metric llmft reports")
    assert problem.fix is not None and problem.fix.startswith("use eval_accuracy")


@pytest.mark.parametrize(
    ("hpo", "sections", "fragment"),
    [
        (
            {"metric": "eval_accuracy"},
            {"model": {"name_or_path": "m", "task": "causal_lm"}},
            "eval_accuracy (next-token accuracy) is measured for a causal_lm model only when asked for",
        ),
        (
            {"metric": "eval_f1"},
            {"model": {"name_or_path": "m", "task": "causal_lm"}},
            "eval_f1 needs a classification task",
        ),
        (
            {"metric": "eval_perplexity"},
            {"model": {"name_or_path": "m", "task": "sequence_classification"}},
            "perplexity needs a language-model task",
        ),
        (
            {"metric": "eval_loss"},
            {"data": {"dataset": {"train_file": "t.jsonl", "validation_fraction": 0}}},
            "eval_loss is measured on validation data, and there is none",
        ),
        ({"metric": "test_accuracy"}, {}, "test_accuracy is measured on test data, and there is none"),
        (
            {"backend": "optuna", "search_algorithm": "hyperopt"},
            {},
            "hyperopt is a Ray Tune search algorithm",
        ),
        ({"backend": "ray", "search_algorithm": "bayesopt"}, {}, "bayesopt searches numeric ranges only"),
    ],
)
def test_search_problems(hpo: dict, sections: dict, fragment: str) -> None:
    cfg = config({"parameters": {"r": [4, 8]}, **hpo}, **sections)
    errors = [m for m in messages(cfg) if m[1] == "error"]
    assert len(errors) == 1 and fragment in errors[0][2], errors
    with pytest.raises(ConfigError):
        make_plan(cfg)


def test_next_token_accuracy_can_be_searched_on_when_asked_for() -> None:
    cfg = config(
        {"metric": "eval_accuracy", "direction": "maximize", "parameters": {"r": [4, 8]}},
        model={"name_or_path": "m", "task": "causal_lm"},
        evaluation={"metrics": ["loss", "accuracy"]},
    )
    assert messages(cfg) == []


def test_settings_the_backend_ignores_are_warnings() -> None:
    cfg = config(
        {"backend": "grid", "storage": "sqlite:///x.db", "ray_address": "auto", "parameters": {"r": [4]}}
    )
    found = [(p, s) for p, s, _ in messages(cfg)]
    assert found == [("hpo.storage", "warning"), ("hpo.ray_address", "warning")]


def test_pruning_without_evaluations_is_warned_about() -> None:
    cfg = config({"backend": "optuna", "parameters": {"r": [4, 8]}}, training={"eval_strategy": "no"})
    assert [p for p, _, _ in messages(cfg)] == ["hpo.pruner"]


# ------------------------------------------------------------------------------------ trial counts
def test_grid_size_caps_max_trials_and_ranges_are_split_into_three_values() -> None:
    lr = {"low": 1e-4, "high": 1e-2, "log": True}
    plan = make_plan(config({"parameters": {"r": [4, 8], "learning_rate": lr}, "max_trials": 100}))
    assert plan.max_trials == 6
    notes = {p.path: p.message for p in plan.notices}
    assert notes["hpo.parameters.training.learning_rate"] == (
        "the grid tries 3 values of this range: 0.0001, 0.001, 0.01"
    )


def test_search_backends_default_to_ten_trials() -> None:
    plan = make_plan(config({"backend": "optuna", "parameters": {"r": [4, 8]}}))
    assert plan.max_trials == 10
    assert any(p.path == "hpo.max_trials" and p.severity == "notice" for p in plan.notices)


def test_no_parameters_is_an_error() -> None:
    with pytest.raises(ConfigError) as err:
        make_plan(config({}))
    found = [(p.path, p.message) for p in err.value.problems]
    assert found == [("hpo.parameters", "no parameters to search")]


def test_legacy_ray_tune_block_becomes_a_ray_plan() -> None:
    cfg = load_config(REPO / "tests" / "data" / "legacy_configs" / "ray_tune_search.json")
    plan = make_plan(cfg)
    assert (plan.backend, plan.max_trials, plan.parallel, plan.pruner) == ("ray", 8, 2, "asha")
    assert (plan.metric, plan.direction) == ("eval_loss", "minimize")
    kinds = {s.path: (s.kind, s.log) for s in plan.spaces}
    assert kinds == {
        "training.learning_rate": ("float", True),
        "model.adapter.r": ("choice", False),
        "training.warmup_ratio": ("float", False),
    }
    assert plan.max_reports == 1  # one evaluation per epoch, one epoch


def test_the_study_is_named_after_the_output_dir_and_the_plan_is_plain_data() -> None:
    import pickle

    plan = make_plan(config({"backend": "optuna", "parameters": {"r": [4, 8]}}))
    assert plan.study_name == "llmft-search"
    assert pickle.loads(pickle.dumps(plan)) == plan
    assert plan.base["hpo"]["enabled"] is False  # type: ignore[index]
    assert "output_dir" not in plan.fingerprint()["base"]  # type: ignore[operator]


# ---------------------------------------------------------------------------------------------- ray
def test_spaces_become_tune_domains() -> None:
    tune = pytest.importorskip("ray.tune")
    from llmft.hpo.ray import tune_space

    lr = tune_space(parse_space("lr", ["float", 1e-5, 1e-3, "log"]), tune)
    assert type(lr).__name__ == "Float" and (lr.lower, lr.upper) == (1e-5, 1e-3)
    assert "LogUniform" in type(lr.get_sampler()).__name__
    r = tune_space(parse_space("r", {"low": 4, "high": 16, "step": 4}), tune)
    assert type(r).__name__ == "Integer" and r.upper == 16
    choice = tune_space(parse_space("r", ["choice", 4, 8]), tune)
    assert choice.categories == [4, 8]


def test_ray_trial_numbers_start_at_zero_for_every_search_algorithm() -> None:
    from llmft.hpo.ray import trial_number

    random_plan = make_plan(config({"backend": "ray", "parameters": {"r": [4, 8]}}))
    tpe_plan = make_plan(config({"backend": "ray", "search_algorithm": "tpe", "parameters": {"r": [4, 8]}}))
    assert trial_number(random_plan, "0_r=4") == 0 and trial_number(random_plan, "trial_3") == 3
    assert trial_number(tpe_plan, "1_r=4") == 0 and trial_number(tpe_plan, "trial_4") == 3


def test_a_ray_trial_without_its_last_report_was_stopped_by_the_scheduler(tmp_path: Path) -> None:
    from llmft.hpo.ray import DONE, _assemble

    cfg = config({"backend": "ray", "metric": "eval_loss", "parameters": {"r": [4, 8]}})
    plan = make_plan(cfg.model_copy(update={"output_dir": str(tmp_path)}))
    last = {"eval_loss": 2.5, "step": 4, "reported_at": 10.0}
    stopped = _assemble(plan, 3, {"model.adapter.r": 4}, last, None)
    assert (stopped.number, stopped.state, stopped.value, stopped.steps) == (3, "pruned", 2.5, 4)
    done = _assemble(plan, 1, {"model.adapter.r": 8}, {"eval_loss": 1.5, "step": 8, DONE: 1}, None)
    assert (done.state, done.value, done.params) == ("complete", 1.5, {"model.adapter.r": 8})
    failed = _assemble(plan, 2, {"model.adapter.r": 8}, {}, "TrialFailed: boom")
    assert (failed.state, failed.error) == ("failed", "TrialFailed: boom")


@pytest.mark.parametrize(
    "spec", [{"low": 4, "high": 16, "step": 0}, ["float", 10**400, 1], ["float", 1e-3, 1e-5]]
)
def test_unusable_spaces_stop_the_plan(spec: object) -> None:
    cfg = config({"parameters": {"r": [4]}})
    cfg.hpo.parameters = {"training.learning_rate": spec}  # set by a program: config/checks.py never saw it
    with pytest.raises(ConfigError) as err:
        make_plan(cfg)
    assert [p.path for p in err.value.problems] == ["hpo.parameters.training.learning_rate"]
