"""Validation errors as messages a person can act on: dotted path, expected, found, did-you-mean."""

from __future__ import annotations

import copy

import pytest

from llmft.config.fixes import EXAMPLES, value_text
from llmft.config.legacy import normalise_legacy
from llmft.config.load import validate_dict
from llmft.config.render import show, suggest, walk_loc
from llmft.config.schema import LoraAdapter, ModelConfig, PrefixTuningAdapter, RunConfig, TrainingConfig

MINIMAL = {"data": {"dataset": {"train_file": "train.jsonl"}}, "model": {"name_or_path": "gpt2"}}


def messages(patch: dict) -> list[str]:
    """Rendered errors of MINIMAL + patch (one level of sections merged)."""
    data = copy.deepcopy(MINIMAL)
    for section, value in patch.items():
        if isinstance(value, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **value}  # type: ignore[dict-item]
        else:
            data[section] = value
    state = normalise_legacy(data)
    _, problems = validate_dict(state.data)
    return [p.render() for p in problems if p.severity == "error"]


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"trainig": {}}, "trainig: unknown key (did you mean `training`?)"),
        (
            {"model": {"adapter": {"type": "lora", "lora_alpah": 16}}},
            "model.adapter.lora_alpah: unknown key (did you mean `lora_alpha`?)",
        ),
        (
            {"model": {"adapter": {"type": "qlora", "bitz": 4}}},
            "model.adapter.bitz: unknown key (did you mean `bits`?)",
        ),
        (
            {"data": {"tokenization": {"max_lenght": 5}}},
            "data.tokenization.max_lenght: unknown key (did you mean `max_length`?)",
        ),
        (
            {"data": {"dataset": {"train_file": "t.jsonl", "split": {"trian": "x"}}}},
            "data.dataset.split.trian: unknown key (did you mean `train`?)",
        ),
        (
            {"training": {"num_train_epoch": 2}},
            "training.num_train_epoch: unknown key (did you mean `num_train_epochs`?)",
        ),
        (
            {"training": {"optimizer": "adamww"}},
            'training.optimizer: expected one of adamw, sgd; got "adamww" (did you mean `adamw`?)',
        ),
        (
            {"training": {"optimizer": "adamw_torchh"}},
            'training.optimizer: expected one of adamw, sgd; got "adamw_torchh" (did you mean `adamw`?)',
        ),
        (
            {"model": {"adapter": {"type": "prefix-tunning"}}},
            "model.adapter.type: expected one of lora, qlora, prefix_tuning, prompt_tuning, none; "
            'got "prefix-tunning" '
            "(did you mean `prefix_tuning`?)",
        ),
        (
            {"evaluation": {"metrics": ["loss", "acuracy"]}},
            "evaluation.metrics.1: expected one of loss, perplexity, accuracy, precision, recall, f1, "
            "f1_macro; "
            'got "acuracy" (did you mean `accuracy`?)',
        ),
        (
            {"tracking": {"report_to": ["wandbb"]}},
            "tracking.report_to.0: expected one of jsonl, tensorboard, wandb, mlflow; "
            'got "wandbb" (did you mean `wandb`?)',
        ),
        ({"training": {"learning_rate": "fast"}}, 'training.learning_rate: expected a number, got "fast"'),
        (
            {"training": {"learning_rate": -1e-4}},
            "training.learning_rate: expected a number > 0, got -0.0001",
        ),
        (
            {"training": {"learning_rate": float("nan")}},
            "training.learning_rate: expected a finite number, got NaN",
        ),
        ({"training": {"adam_beta2": 1.0}}, "training.adam_beta2: expected a number < 1, got 1.0"),
        ({"training": {"weight_decay": -0.1}}, "training.weight_decay: expected a number >= 0, got -0.1"),
        ({"training": {"batch_size": 2.5}}, "training.batch_size: expected a whole number, got 2.5"),
        ({"training": {"compile": "maybe"}}, 'training.compile: expected true or false, got "maybe"'),
        (
            {"model": {"adapter": {"type": "lora", "target_modules": 5}}},
            "model.adapter.target_modules: expected one of auto, all-linear, or a list; got 5",
        ),
        (
            {"model": {"adapter": {"type": "lora", "target_modules": "everything"}}},
            'model.adapter.target_modules: expected one of auto, all-linear, or a list; got "everything"',
        ),
        (
            {"model": {"adapter": {"type": "lora", "target_modules": ["q_proj", 5]}}},
            "model.adapter.target_modules.1: expected a string, got 5",
        ),
        ({"model": {"adapter": "lora"}}, 'model.adapter: expected a mapping (key: value pairs), got "lora"'),
        (
            {"model": {"adapter": {"type": 4}}},
            'model.adapter.type: expected one of lora, qlora, prefix_tuning, prompt_tuning, none; got "4"',
        ),
        ({"model": "gpt2"}, 'model: expected a mapping (key: value pairs), got "gpt2"'),
        (
            {"training": "epochs:3"},
            'training: expected a mapping (key: value pairs), got "epochs:3" '
            "Fix: put a space after the colon: `epochs: 3`",
        ),
        ({"hpo": {"parameters": {7: [1, 2]}}}, "hpo.parameters.7: expected a string, got 7"),
        ({"seed": "x" * 100}, f'seed: expected a whole number, got "{"x" * 56}...'),
    ],
)
def test_message(patch: dict, expected: str) -> None:
    found = messages(patch)
    assert any(m.startswith(expected) for m in found), found


def test_unknown_key_without_a_near_name_lists_the_valid_keys() -> None:
    [message] = messages({"model": {"adapter": {"type": "prefix_tuning", "r": 8}}})
    assert message == (
        "model.adapter.r: unknown key Fix: remove `r`: it belongs to `type: lora` or `type: qlora`; "
        "keys allowed here: type, num_virtual_tokens"
    )


def test_missing_required_section() -> None:
    data = {"model": {"name_or_path": "gpt2"}}
    _, problems = validate_dict(data)
    assert [p.render() for p in problems] == [
        "data: required key is missing Fix: add `data: {dataset: {train_file: data/train.jsonl}}`"
    ]


def fixes_of(patch: dict) -> dict[str, str | None]:
    """Path → fix of the errors of MINIMAL + patch."""
    data = copy.deepcopy(MINIMAL)
    for section, value in patch.items():
        if isinstance(value, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **value}  # type: ignore[dict-item]
        else:
            data[section] = value
    _, problems = validate_dict(normalise_legacy(data).data)
    return {p.path: p.fix for p in problems if p.severity == "error"}


@pytest.mark.parametrize(
    ("patch", "path", "fix"),
    [
        # unknown key: a near name, a near legacy name (its current spelling), none (the keys allowed)
        (
            {"training": {"learnig_rate": 1e-4}},
            "training.learnig_rate",
            "rename `learnig_rate` to `learning_rate`",
        ),
        (
            {"model": {"adapter": {"type": "lora", "lora_alpah": 16}}},
            "model.adapter.lora_alpah",
            "rename `lora_alpah` to `alpha` (the current name of `lora_alpha`)",
        ),
        (
            {"model": {"lora_rr": 8}},
            "model.lora_rr",
            "replace `lora_rr` with `model.adapter.r` (the current spelling of `lora_r`)",
        ),
        (
            {"zzz": 1},
            "zzz",
            "remove `zzz` (allowed keys here: output_dir, seed, data, model, training, evaluation, hpo, "
            "tracking, hf_token)",
        ),
        (
            {"training": {"zzz": 1}},
            "training.zzz",
            "remove `zzz` (allowed keys here: epochs, max_steps, batch_size, eval_batch_size, "
            "gradient_accumulation_steps, learning_rate, weight_decay, optimizer, adam_beta1, ... "
            "(23 more in docs/CONFIG.md))",
        ),
        # enum values: the near value first, else every allowed value
        (
            {"training": {"lr_scheduler": "cosin"}},
            "training.lr_scheduler",
            "use `cosine` (or one of: linear, constant)",
        ),
        ({"training": {"optimizer": "adamw_torchh"}}, "training.optimizer", "use `adamw` (or sgd)"),
        ({"model": {"dtype": "fp32"}}, "model.dtype", "use one of: auto, float32, bfloat16, float16"),
        (
            {"model": {"adapter": {"type": "ia3"}}},
            "model.adapter.type",
            "use one of: lora, qlora, prefix_tuning, prompt_tuning, none",
        ),
        # wrong types: an example of the expected type (the field's default when it has one)
        (
            {"training": {"learning_rate": "fast"}},
            "training.learning_rate",
            "write a number such as 2e-4 (no quotes)",
        ),
        (
            {"training": {"batch_size": 2.5}},
            "training.batch_size",
            "write a whole number such as 8 (no decimal point)",
        ),
        (
            {"data": {"packing": "yes please"}},
            "data.packing",
            "write `packing: true` or `packing: false` (no quotes)",
        ),
        ({"tracking": {"report_to": "wandb"}}, "tracking.report_to", "write a list: `report_to: [wandb]`"),
        ({"model": {"name_or_path": 5}}, "model.name_or_path", 'quote it: `"5"`'),
        (
            {"model": {"adapter": {"type": "lora", "target_modules": 5}}},
            "model.adapter.target_modules",
            "use one of: auto, all-linear; or write a list such as [q_proj, v_proj]",
        ),
        ({"model": "gpt2"}, "model", "write `model: {name_or_path: gpt2}`"),
        ({"model": {"adapter": "lora"}}, "model.adapter", "write `adapter: {type: lora}`"),
        (
            {"training": None},
            "training",
            "indent its `key: value` lines under `training:`, or delete the empty `training:` line",
        ),
        # out of range: every bound of the field, and an example inside them
        ({"training": {"learning_rate": -1e-4}}, "training.learning_rate", "use a value > 0, such as 2e-4"),
        ({"training": {"batch_size": 0}}, "training.batch_size", "use a whole number > 0, such as 8"),
        (
            {"training": {"warmup_ratio": 1.5}},
            "training.warmup_ratio",
            "use a value >= 0 and < 1, such as 0.1",
        ),
        (
            {"training": {"learning_rate": float("inf")}},
            "training.learning_rate",
            "write a finite number such as 2e-4 (not .inf or .nan)",
        ),
        # section rules
        ({"training": {"epochs": 1, "max_steps": 5}}, "training", "delete `epochs` or `max_steps`"),
        (
            {"training": {"eval_strategy": "steps"}},
            "training",
            "add e.g. `eval_steps: 100`, or set `eval_strategy: epoch`",
        ),
    ],
)
def test_fix(patch: dict, path: str, fix: str) -> None:
    found = fixes_of(patch)
    assert found.get(path) == fix, found


def test_fix_of_a_missing_key_shows_an_example() -> None:
    _, problems = validate_dict({"data": MINIMAL["data"], "model": {"task": "causal_lm"}})
    assert [(p.path, p.fix) for p in problems] == [
        ("model.name_or_path", "add `name_or_path: gpt2` under `model:`")
    ]


def test_a_secret_is_not_repeated_in_its_fix() -> None:
    assert fixes_of({"hf_token": 12345}) == {"hf_token": "write text (quoted if it looks like a number)"}


def test_every_example_names_a_config_field() -> None:
    for path in EXAMPLES:
        found = walk_loc(tuple(path.split(".")))
        assert found.model is not None and found.key in found.model.model_fields, path


def test_value_text_writes_values_as_yaml() -> None:
    assert [value_text(v) for v in (2e-4, 1e-8, 0.999, 16.0, True, "gpt2")] == [
        "2e-4",
        "1e-8",
        "0.999",
        "16",
        "true",
        "gpt2",
    ]


def test_adapter_type_defaults_to_lora() -> None:
    config, problems = validate_dict({**MINIMAL, "model": {"name_or_path": "gpt2", "adapter": {"r": 32}}})
    assert problems == [] and config is not None
    assert config.model.adapter == LoraAdapter(r=32)


def test_walk_loc_skips_union_tags_and_branch_labels() -> None:
    found = walk_loc(("model", "adapter", "lora", "lora_alpah"))
    assert (found.model, found.key, found.display) == (
        LoraAdapter,
        "lora_alpah",
        ["model", "adapter", "lora_alpah"],
    )
    found = walk_loc(("model", "adapter", "lora", "target_modules", "list[str]", 0))
    assert found.display == ["model", "adapter", "target_modules", "0"] and found.branch
    found = walk_loc(("model", "adapter", "prefix_tuning", "num_virtual_tokens"))
    assert found.model is PrefixTuningAdapter
    assert walk_loc(("model", "adapter", "r")).model is LoraAdapter  # an hpo path names no tag
    assert walk_loc(("training", "warmup_ratio")).model is TrainingConfig
    assert walk_loc(("model", "task")).model is ModelConfig
    assert walk_loc(("nope", "x")).model is RunConfig


def test_suggest() -> None:
    assert suggest("traning", ["training", "model"]) == " (did you mean `training`?)"
    assert suggest("zzz", ["training", "model"]) == ""
    assert suggest("grid_searchh", ["grid", "random"], {"grid_search": "grid"}) == " (did you mean `grid`?)"
    assert suggest("hyperband_search", ["grid", "random"], {"random_search": "random"}) == ""


def test_show_repeats_values_compactly() -> None:
    assert show("fast") == '"fast"'
    assert show([1, "a"]) == '[1, "a"]'
    assert show(None) == "null"
    assert len(show("y" * 500)) == 60
