"""The schema itself: documented, exportable as JSON Schema, strict about unknown keys and odd numbers."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from llmft.config.schema import LoraAdapter, NoAdapter, PrefixTuningAdapter, RunConfig, TrainingConfig


def sections(
    model: type[BaseModel] = RunConfig, seen: set[type[BaseModel]] | None = None
) -> set[type[BaseModel]]:
    from llmft.config.render import _model_in, _union_members

    seen = seen if seen is not None else set()
    seen.add(model)
    for field in model.model_fields.values():
        for inner in [_model_in(field.annotation, None), *_union_members(field.annotation)]:
            if inner is not None and inner not in seen:
                sections(inner, seen)
    return seen


def test_every_option_is_documented() -> None:
    undocumented = [
        f"{m.__name__}.{name}"
        for m in sections()
        for name, field in m.model_fields.items()
        if name != "type" and not field.description
    ]
    assert undocumented == []


def test_json_schema_lists_every_adapter_kind() -> None:
    schema = RunConfig.model_json_schema()
    adapter = schema["$defs"]["ModelConfig"]["properties"]["adapter"]
    refs = {ref["$ref"].rsplit("/", 1)[-1] for ref in adapter["oneOf"]}
    assert refs == {
        "LoraAdapter",
        "QLoraAdapter",
        "IA3Adapter",
        "LoHaAdapter",
        "LoKrAdapter",
        "VeraAdapter",
        "OftAdapter",
        "AdaptionPromptAdapter",
        "PrefixTuningAdapter",
        "PromptTuningAdapter",
        "NoAdapter",
    }


@pytest.mark.parametrize(
    ("adapter", "expected"),
    [
        ({}, LoraAdapter()),
        ({"type": "none"}, NoAdapter()),
        ({"type": "prefix_tuning", "num_virtual_tokens": 4}, PrefixTuningAdapter(num_virtual_tokens=4)),
    ],
)
def test_adapter_kinds(adapter: dict, expected: BaseModel) -> None:
    config = RunConfig.model_validate(
        {"data": {"dataset": {"name": "imdb"}}, "model": {"name_or_path": "gpt2", "adapter": adapter}}
    )
    assert config.model.adapter == expected


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_infinite_and_nan_numbers_are_refused(value: float) -> None:
    with pytest.raises(ValidationError):
        TrainingConfig(learning_rate=value)


def test_assignment_is_validated() -> None:
    training = TrainingConfig()
    with pytest.raises(ValidationError):
        training.batch_size = 0
