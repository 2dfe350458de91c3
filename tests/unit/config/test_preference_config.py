"""training.objective and training.preference: a setting the chosen objective would not read is refused,
objectives that cannot work with the data/model sections are refused with the fix, and the preference
metrics are names the search, early stopping and the best checkpoint accept (higher accuracy is better)."""

from __future__ import annotations

import copy

import pytest

from llmft.config.load import validate_dict
from llmft.config.metrics import KNOWN_METRICS, metric_direction
from llmft.config.schema import RunConfig
from llmft.errors import ConfigError
from llmft.evaluate.best import Best
from llmft.train.objectives.choose import choose_objective, task_for

MINIMAL = {"data": {"dataset": {"train_file": "train.jsonl"}}, "model": {"name_or_path": "gpt2"}}


def problems(training: dict, **sections: dict) -> list[str]:
    data = copy.deepcopy(MINIMAL)
    data["training"] = training
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value}  # type: ignore[dict-item]
    _, found = validate_dict(data)
    return [p.render() for p in found]


@pytest.mark.parametrize(
    ("objective", "task"), [("dpo", "auto"), ("kto", "causal_lm"), ("reward", "sequence_classification")]
)
def test_preference_objectives_take_packing(objective: str, task: str) -> None:
    assert problems({"objective": objective}, data={"packing": True}, model={"task": task}) == []


def test_packing_a_classification_model_is_still_refused_outside_reward() -> None:
    found = problems(
        {"objective": "classification"}, data={"packing": True}, model={"task": "sequence_classification"}
    )

    assert any("packing applies to causal-LM training, not sequence_classification" in p for p in found)


@pytest.mark.parametrize(
    ("training", "sections", "expected"),
    [
        (
            {"preference": {"label_smoothing": 0.1}},
            {},
            "label_smoothing is read only by loss_type `robust`, not `sigmoid`",
        ),
        (
            {"preference": {"max_length": 64, "max_prompt_length": 64}},
            {},
            "max_prompt_length (64) must be below max_length (64)",
        ),
        (
            {"objective": "simpo", "preference": {"loss_type": "ipo"}},
            {},
            "training.preference.loss_type: training.preference.loss_type is not read by objective `simpo` "
            "(only by dpo)",
        ),
        (
            {"objective": "reward"},
            {"model": {"task": "causal_lm"}},
            "model.task: objective reward trains a sequence_classification model, not causal_lm",
        ),
        (
            {"objective": "orpo"},
            {"data": {"preprocessing": {"format": "alpaca"}}},
            "objective orpo needs preference data, but data.preprocessing.format is alpaca",
        ),
        ({"objective": "sft"}, {"data": {"preprocessing": {"format": "kto"}}}, "sft on judged (kto) rows"),
    ],
)
def test_impossible_or_ignored_preference_settings_are_refused(
    training: dict, sections: dict, expected: str
) -> None:
    found = problems(training, **sections)
    assert any(expected in p for p in found), found


def test_settings_the_objective_reads_pass() -> None:
    training = {
        "objective": "kto",
        "preference": {"beta": 0.2, "desirable_weight": 1.5, "precompute_reference": True},
    }
    assert problems(training) == []
    assert problems({"objective": "simpo", "preference": {"beta": 2.0, "gamma": 1.0}}) == []


def _config(**training: object) -> RunConfig:
    return RunConfig.model_validate({**MINIMAL, "training": training})


def _choose(config: RunConfig, data_format: str) -> tuple[str, str]:
    return choose_objective(config.training, data_format)


def test_auto_objective_follows_the_data_and_is_checked_once_resolved() -> None:
    assert _choose(_config(), "preference") == ("dpo", "preference pairs and no training.objective")
    assert _choose(_config(), "kto")[0] == "kto"
    assert _choose(_config(), "alpaca") == ("sft", "alpaca data")
    with pytest.raises(ConfigError, match="gamma is not read by objective `dpo`"):
        _choose(_config(preference={"gamma": 1.0}), "preference")
    with pytest.raises(ConfigError, match="needs preference pairs"):
        _choose(_config(objective="dpo"), "alpaca")
    reward = _config(objective="reward").model
    assert task_for(reward, "reward", "causal_lm", "auto")[0] == "sequence_classification"


def test_preference_metrics_are_known_and_higher_accuracy_is_better() -> None:
    assert {"eval_rewards/accuracies", "eval_rewards/margins", "eval_kl", "test_rewards/accuracies"} <= set(
        KNOWN_METRICS
    )
    assert metric_direction("eval_rewards/accuracies") == "maximize"
    assert metric_direction("eval_rewards/rejected") == "minimize"
    best = Best.of("eval_rewards/accuracies")
    assert best.update(0.6) and best.update(0.9) and not best.update(0.7)
    config = {"enabled": True, "metric": "eval_rewards/accuracies", "direction": "maximize"}
    assert problems({}, hpo={**config, "parameters": {"training.preference.beta": [0.1, 0.5]}}) == []
