"""Rules across sections (config/checks.py): contradictions are errors, machine mismatches are warnings."""

from __future__ import annotations

import copy

import pytest

from llmft.config import checks
from llmft.config.load import validate_dict
from llmft.errors import Problem

MINIMAL = {"data": {"dataset": {"train_file": "train.jsonl"}}, "model": {"name_or_path": "gpt2"}}


def check(patch: dict) -> list[Problem]:
    data = copy.deepcopy(MINIMAL)
    for section, value in patch.items():
        data[section] = {**data.get(section, {}), **value}  # type: ignore[dict-item]
    _, problems = validate_dict(data)
    return problems


def rendered(patch: dict) -> list[str]:
    return [f"{p.severity}: {p.render()}" for p in check(patch)]


@pytest.fixture(autouse=True)
def _no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "cuda_probably_available", lambda: False)


# ------------------------------------------------------------------------------------ metrics vs task
@pytest.mark.parametrize(
    ("task", "metrics", "expected"),
    [
        (
            "causal_lm",
            ["loss", "accuracy", "f1"],
            "error: evaluation.metrics: f1 needs a classification task, but model.task is causal_lm "
            "Fix: use loss/perplexity/accuracy (next-token accuracy for a language model), "
            "or set model.task: sequence_classification",
        ),
        (
            "seq2seq_lm",
            ["f1", "recall"],
            "error: evaluation.metrics: f1, recall need a classification task, but model.task is seq2seq_lm "
            "Fix: use loss/perplexity/accuracy (next-token accuracy for a language model), "
            "or set model.task: sequence_classification",
        ),
        (
            "sequence_classification",
            ["accuracy", "perplexity"],
            "error: evaluation.metrics: perplexity needs a "
            "language-model task, but the task is sequence_classification "
            "Fix: use accuracy/precision/recall/f1",
        ),
    ],
)
def test_metrics_that_contradict_the_task(task: str, metrics: list[str], expected: str) -> None:
    assert rendered({"model": {"task": task}, "evaluation": {"metrics": metrics}}) == [expected]


@pytest.mark.parametrize(
    ("task", "metrics"),
    [
        ("auto", ["accuracy", "perplexity"]),
        ("causal_lm", ["loss", "perplexity"]),
        ("causal_lm", ["loss", "accuracy"]),  # next-token accuracy
        ("seq2seq_lm", ["accuracy"]),
        ("sequence_classification", ["loss", "accuracy", "f1_macro"]),
        ("causal_lm", None),
    ],
)
def test_metrics_that_fit(task: str, metrics: list[str] | None) -> None:
    assert check({"model": {"task": task}, "evaluation": {"metrics": metrics}}) == []


# ------------------------------------------------------------------------------------------ machine
def test_qlora_without_cuda_or_bitsandbytes_is_only_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "cuda_probably_available", lambda: False)
    monkeypatch.setattr(checks, "bitsandbytes_cpu_ready", lambda: False)
    config, problems = validate_dict(
        {**MINIMAL, "model": {"name_or_path": "gpt2", "adapter": {"type": "qlora"}}}
    )
    assert config is not None
    assert [(p.severity, p.path) for p in problems] == [("warning", "model.adapter.type")]
    assert (
        problems[0].fix == "run `pip install 'llmft[quant]'`, or use `type: lora` without model.quantization"
    )
    quantized = {"name_or_path": "gpt2", "quantization": {"method": "bnb-8bit"}}
    _, problems = validate_dict({**MINIMAL, "model": quantized})
    assert [(p.severity, p.path) for p in problems] == [("warning", "model.quantization")]


def test_qlora_on_cpu_with_bitsandbytes_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "cuda_probably_available", lambda: False)
    monkeypatch.setattr(checks, "bitsandbytes_cpu_ready", lambda: True)
    assert check({"model": {"adapter": {"type": "qlora"}}}) == []


def test_qlora_with_cuda_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "cuda_probably_available", lambda: True)
    assert check({"model": {"adapter": {"type": "qlora", "bits": 8}}}) == []


def test_cuda_probe_honours_an_empty_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real probe, not the fixture's stand-in
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert checks.cuda_probably_available() is False


# -------------------------------------------------------------------------------- training, packing
def test_early_stopping_needs_evaluations() -> None:
    assert rendered({"training": {"eval_strategy": "no", "early_stopping_patience": 2}}) == [
        "error: training.early_stopping_patience: early stopping needs evaluations, "
        "but eval_strategy is `no` "
        "Fix: set training.eval_strategy: epoch or steps"
    ]
    assert check({"training": {"early_stopping_patience": 2}}) == []


@pytest.mark.parametrize("task", ["sequence_classification", "seq2seq_lm"])
def test_packing_is_for_causal_lm(task: str) -> None:
    assert [p.path for p in check({"model": {"task": task}, "data": {"packing": True}})] == ["data.packing"]
    assert check({"model": {"task": "causal_lm"}, "data": {"packing": True}}) == []


# ----------------------------------------------------------------------------------------------- hpo
def test_hpo_disabled_with_an_empty_space_is_fine() -> None:
    assert check({"hpo": {"enabled": False, "parameters": {}}}) == []


def test_hpo_enabled_with_an_empty_space() -> None:
    [problem] = check({"hpo": {"enabled": True}})
    assert (problem.path, problem.message) == (
        "hpo.parameters",
        "hpo is enabled but no parameters are given to search",
    )


@pytest.mark.parametrize(
    "parameters",
    [
        {"training.learning_rate": [1e-4, 3e-4]},
        {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}},
        {"model.adapter.r": {"low": 4, "high": 16, "step": 4}},
        {"r": [4, 8], "lora_alpha": [8, 16], "lr": ["float", 1e-5, 1e-3, "log"]},
        {"training.warmup_ratio": ["float", 0.0, 0.1]},
        {"training.lr_scheduler": ["choice", "linear", "cosine"]},
        {"data.tokenization.max_length": ["int", 64, 256, 64]},
    ],
)
def test_hpo_spaces_that_are_valid(parameters: dict) -> None:
    assert check({"hpo": {"enabled": True, "parameters": parameters}}) == []


@pytest.mark.parametrize(
    ("parameters", "path", "fragment"),
    [
        (
            {"training.learnin_rate": [1e-4]},
            "hpo.parameters.training.learnin_rate",
            "`training.learnin_rate` is not a config field",
        ),
        ({"nonsense": [1, 2]}, "hpo.parameters.nonsense", "`nonsense` is not a config field"),
        (
            {"training.learning_rate": [1e-4, -1.0]},
            "hpo.parameters.training.learning_rate",
            "value -1.0 is rejected by `training.learning_rate`: expected a number > 0, got -1.0",
        ),
        (
            {"training.optimizer": ["adamw", "adam_w"]},
            "hpo.parameters.training.optimizer",
            'value "adam_w" is rejected by `training.optimizer`',
        ),
        (
            {"training.learning_rate": []},
            "hpo.parameters.training.learning_rate",
            "an empty list has nothing to try",
        ),
        (
            {"training.learning_rate": {"low": 1e-5}},
            "hpo.parameters.training.learning_rate",
            "cannot read the space",
        ),
        (
            {"training.learning_rate": ["float", "a", "b"]},
            "hpo.parameters.training.learning_rate",
            'cannot read the space ["float", "a", "b"]: its bounds must be numbers',
        ),
        ({"lr": ["float", 1e-5]}, "hpo.parameters.lr", 'a legacy ["float", ...] space needs its bounds'),
        (
            {"lr": ["float", 1e-3, 1e-5]},
            "hpo.parameters.lr",
            "the range is empty: low 0.001 is above high 1e-05",
        ),
        (
            {"training.weight_decay": ["float", 0.0, 0.1, "log"]},
            "hpo.parameters.training.weight_decay",
            "a log range needs low > 0",
        ),
        (
            {"model.adapter.r": {"low": 4, "high": 16, "step": 0}},
            "hpo.parameters.model.adapter.r",
            "the step must be > 0, got 0",
        ),
        (
            {"training.learning_rate": ["float", 10**400, 1]},
            "hpo.parameters.training.learning_rate",
            "its bounds must be numbers",
        ),
    ],
)
def test_hpo_spaces_that_are_wrong(parameters: dict, path: str, fragment: str) -> None:
    problems = check({"hpo": {"enabled": True, "parameters": parameters}})
    assert [p.path for p in problems] == [path]
    assert fragment in problems[0].message


def test_hpo_parameter_of_another_adapter_kind_is_rejected() -> None:
    problems = check(
        {
            "model": {"adapter": {"type": "prompt_tuning"}},
            "hpo": {"enabled": True, "parameters": {"model.adapter.r": [4, 8]}},
        }
    )
    assert [p.path for p in problems] == ["hpo.parameters.model.adapter.r"]
    assert "unknown key" in problems[0].message


def test_hpo_parameters_are_checked_even_when_disabled() -> None:
    """A space written now is run later (e.g. with `hpo.enabled=true` on the command line)."""
    assert [p.path for p in check({"hpo": {"enabled": False, "parameters": {"x.y": [1]}}})] == [
        "hpo.parameters.x.y"
    ]
