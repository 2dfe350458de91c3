"""evaluation.generate at validate time: the schema takes it, and a config that cannot work is refused
with what to change (a classifier, missing scoring packages, a search or early stopping on scores never
measured)."""

from __future__ import annotations

import copy

import pytest

from llmft.config import checks
from llmft.config.load import validate_dict

BASE = {
    "data": {"dataset": {"train_file": "train.jsonl"}},
    "model": {"name_or_path": "gpt2"},
    "evaluation": {"generate": {"max_new_tokens": 16, "when": "end"}},
}


def problems(patch: dict) -> list[str]:
    data = copy.deepcopy(BASE)
    for section, value in patch.items():
        data[section] = {**data.get(section, {}), **value}  # type: ignore[dict-item]
    config, found = validate_dict(data)
    return [f"{p.severity}: {p.render()}" for p in found]


def test_defaults_and_a_valid_config() -> None:
    config, found = validate_dict(copy.deepcopy(BASE))
    assert found == [] and config is not None
    cfg = config.evaluation.generate
    assert (cfg.max_new_tokens, cfg.max_rows, cfg.when, cfg.do_sample, cfg.batch_size) == (
        16,
        200,
        "end",
        False,
        None,
    )


def test_unknown_key_and_bad_when_are_refused() -> None:
    text = " | ".join(problems({"evaluation": {"generate": {"when": "always", "max_new_token": 3}}}))
    assert "evaluation.generate.when" in text and "evaluation.generate.max_new_token" in text


def test_classification_is_refused() -> None:
    assert problems({"model": {"name_or_path": "gpt2", "task": "sequence_classification"}}) == [
        "error: evaluation.generate: evaluation by generation needs a model that generates text, and "
        "model.task is sequence_classification Fix: remove evaluation.generate (classification is scored by "
        "evaluation.metrics)"
    ]


def test_missing_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "missing_scoring_packages", lambda: ["rouge-score", "sacrebleu"])
    assert problems({}) == [
        "error: evaluation.generate: scoring generations needs rouge-score and sacrebleu, which are not "
        "installed Fix: pip install 'llmft[eval]'"
    ]


def test_scores_drive_training_only_when_measured_at_every_eval() -> None:
    stop = {"early_stopping_patience": 2, "early_stopping_metric": "eval_rougeL"}
    assert problems({"training": stop}) == [
        "error: training.early_stopping_metric: eval_rougeL is only measured at the end with "
        "evaluation.generate.when: end Fix: set evaluation.generate.when: every_eval"
    ]
    assert problems({"training": stop, "evaluation": {"generate": {"when": "every_eval"}}}) == []


def test_search_metric_needs_generation() -> None:
    search = {
        "enabled": True,
        "metric": "eval_exact_match",
        "parameters": {"training.learning_rate": [1e-4, 1e-3]},
    }
    assert problems({"hpo": search}) == []
    assert problems({"hpo": search, "evaluation": {"generate": None}}) == [
        "error: hpo.metric: eval_exact_match is a score of evaluation by generation, which this config "
        "does not turn on Fix: add `evaluation: {generate: {}}` (scores on the final model), or use eval_loss"
    ]
