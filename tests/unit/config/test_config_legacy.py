"""The legacy layouts: each old spelling lands on the right schema field with the right value, and is
reported as a one-line notice naming the modern key; what cannot be mapped with certainty is an error
that says what to write. All of it happens in config/legacy.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from llmft.config.legacy import normalise_legacy
from llmft.config.load import inspect_config
from llmft.config.schema import RunConfig
from llmft.config.space import parse_space

REPO_ROOT = Path(__file__).resolve().parents[3]
LEGACY_DIR = REPO_ROOT / "tests" / "data" / "legacy_configs"
MINIMAL = {"data": {"dataset": {"train_file": "train.jsonl"}}, "model": {"name_or_path": "gpt2"}}


def merge(base: dict, patch: dict) -> dict:
    """``base`` updated by ``patch``, recursively; a None in the patch deletes the key."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = (
                merge(out[key], value)
                if isinstance(value, dict) and isinstance(out.get(key), dict)
                else value
            )
    return out


def load(tmp_path: Path, patch: dict, base: dict = MINIMAL) -> tuple[RunConfig, list[str]]:
    """Validate ``base`` + ``patch`` from a JSON file; returns the config and the rendered notices."""
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(merge(base, patch)), encoding="utf-8")
    loaded = inspect_config(path)
    assert loaded.errors == [], [p.render() for p in loaded.errors]
    assert loaded.config is not None
    return loaded.config, [p.render() for p in loaded.notices]


def get(config: RunConfig, dotted: str) -> object:
    node: object = config
    for key in dotted.split("."):
        node = getattr(node, key)
    return node


# (legacy fragment, schema field, expected value, legacy key path that the notice names, modern key)
MAPPINGS = [
    ({"model": {"model_type": "causal_lm"}}, "model.task", "causal_lm", "model.model_type", "model.task"),
    (
        {"model": {"model_type": "sequence_classification"}},
        "model.task",
        "sequence_classification",
        "model.model_type",
        "model.task",
    ),
    (
        {"model": {"model_type": "classification"}},
        "model.task",
        "sequence_classification",
        "model.model_type",
        "model.task",
    ),
    (
        {"model": {"name_or_path": None, "model_name_or_path": "gpt2-medium"}},
        "model.name_or_path",
        "gpt2-medium",
        "model.model_name_or_path",
        "model.name_or_path",
    ),
    ({"model": {"torch_dtype": "bfloat16"}}, "model.dtype", "bfloat16", "model.torch_dtype", "model.dtype"),
    (
        {"model": {"adapter": {"type": "lora", "lora_alpha": 32}}},
        "model.adapter.alpha",
        32,
        "model.adapter.lora_alpha",
        "model.adapter.alpha",
    ),
    (
        {"model": {"adapter": {"type": "lora", "lora_dropout": 0.1}}},
        "model.adapter.dropout",
        0.1,
        "model.adapter.lora_dropout",
        "model.adapter.dropout",
    ),
    (
        {"model": {"adapter": {"lora": {"r": 16, "alpha": 32, "dropout": 0.05}}}},
        "model.adapter.r",
        16,
        "model.adapter.lora",
        "model.adapter",
    ),
    (
        {"model": {"adapter": {"lora": {"r": 16, "alpha": 32, "dropout": 0.05}}}},
        "model.adapter.alpha",
        32,
        "model.adapter.lora",
        "model.adapter",
    ),
    (
        {"model": {"adapter": {"lora": {"r": 16, "alpha": 32, "dropout": 0.05}}}},
        "model.adapter.dropout",
        0.05,
        "model.adapter.lora",
        "model.adapter",
    ),
    ({"model": {"lora_r": 4}}, "model.adapter.r", 4, "model.lora_r", "model.adapter.r"),
    (
        {"training": {"optim": "adamw_torch"}},
        "training.optimizer",
        "adamw",
        "training.optim",
        "training.optimizer",
    ),
    (
        {"training": {"num_train_epochs": 3}},
        "training.epochs",
        3.0,
        "training.num_train_epochs",
        "training.epochs",
    ),
    (
        {"training": {"per_device_train_batch_size": 4}},
        "training.batch_size",
        4,
        "training.per_device_train_batch_size",
        "training.batch_size",
    ),
    (
        {"training": {"per_device_eval_batch_size": 16}},
        "training.eval_batch_size",
        16,
        "training.per_device_eval_batch_size",
        "training.eval_batch_size",
    ),
    (
        {"training": {"evaluation_strategy": "steps", "eval_steps": 50}},
        "training.eval_strategy",
        "steps",
        "training.evaluation_strategy",
        "training.eval_strategy",
    ),
    (
        {"training": {"lr_scheduler_type": "cosine"}},
        "training.lr_scheduler",
        "cosine",
        "training.lr_scheduler_type",
        "training.lr_scheduler",
    ),
    ({"training": {"lr": 3e-4}}, "training.learning_rate", 3e-4, "training.lr", "training.learning_rate"),
    (
        {"training": {"optimizer": {"name": "adamw", "learning_rate": 1e-4}}},
        "training.learning_rate",
        1e-4,
        "training.optimizer.learning_rate",
        "training.learning_rate",
    ),
    (
        {"training": {"optimizer": {"name": "sgd"}}},
        "training.optimizer",
        "sgd",
        "training.optimizer.name",
        "training.optimizer",
    ),
    (
        {"training": {"optimizer": {"name": "adamw", "weight_decay": 0.01}}},
        "training.weight_decay",
        0.01,
        "training.optimizer.weight_decay",
        "training.weight_decay",
    ),
    (
        {"training": {"optimizer": {"name": "adamw", "beta1": 0.8}}},
        "training.adam_beta1",
        0.8,
        "training.optimizer.beta1",
        "training.adam_beta1",
    ),
    (
        {"training": {"optimizer": {"name": "adamw", "beta2": 0.95}}},
        "training.adam_beta2",
        0.95,
        "training.optimizer.beta2",
        "training.adam_beta2",
    ),
    (
        {"training": {"lr_scheduler": {"name": "cosine", "num_warmup_steps": 30}}},
        "training.lr_scheduler",
        "cosine",
        "training.lr_scheduler.name",
        "training.lr_scheduler",
    ),
    (
        {"training": {"lr_scheduler": {"name": "cosine", "num_warmup_steps": 30}}},
        "training.warmup_steps",
        30,
        "training.lr_scheduler.num_warmup_steps",
        "training.warmup_steps",
    ),
    (
        {"training": {"fp16": True}},
        "training.mixed_precision",
        "fp16",
        "training.fp16",
        "training.mixed_precision: fp16",
    ),
    ({"training": {"seed": 7}}, "seed", 7, "training.seed", "seed"),
    (
        {"data": {"dataset": {"dataset_format": "jsonl"}}},
        "data.dataset.file_format",
        "jsonl",
        "data.dataset.dataset_format",
        "data.dataset.file_format",
    ),
    (
        {"data": {"dataset": {"train_file": None, "hf_dataset_name": "tatsu-lab/alpaca"}}},
        "data.dataset.name",
        "tatsu-lab/alpaca",
        "data.dataset.hf_dataset_name",
        "data.dataset.name",
    ),
    (
        {"data": {"dataset": {"train_file": None, "name": "glue", "hf_dataset_config": "sst2"}}},
        "data.dataset.subset",
        "sst2",
        "data.dataset.hf_dataset_config",
        "data.dataset.subset",
    ),
    (
        {"data": {"dataset": {"train_file": None, "name": "imdb", "hf_dataset_split": "train[:500]"}}},
        "data.dataset.split.train",
        "train[:500]",
        "data.dataset.hf_dataset_split",
        "data.dataset.split.train",
    ),
    (
        {"data": {"dataset": {"column_mapping": {"output": "response"}}}},
        "data.preprocessing.column_mapping",
        {"output": "response"},
        "data.dataset.column_mapping",
        "data.preprocessing.column_mapping",
    ),
    (
        {"data": {"dataset": {"filter_columns": ["text"]}}},
        "data.preprocessing.filter_columns",
        ["text"],
        "data.dataset.filter_columns",
        "data.preprocessing.filter_columns",
    ),
    (
        {"data": {"tokenization": {"model_name_or_path": "gpt2"}}},
        "data.tokenization.tokenizer",
        "gpt2",
        "data.tokenization.model_name_or_path",
        "data.tokenization.tokenizer",
    ),
    (
        {"data": {"preprocessing": {"type": "text", "max_length": 128}}},
        "data.tokenization.max_length",
        128,
        "data.preprocessing.max_length",
        "data.tokenization.max_length",
    ),
    ({"hpo": {"strategy": "grid_search"}}, "hpo.backend", "grid", "hpo.strategy", "hpo.backend"),
    ({"hpo": {"max_evals": 5}}, "hpo.max_trials", 5, "hpo.max_evals", "hpo.max_trials"),
    (
        {"hpo": {"search_space": {"learning_rate": [1e-4, 2e-4]}}},
        "hpo.parameters",
        {"learning_rate": [1e-4, 2e-4]},
        "hpo.search_space",
        "hpo.parameters",
    ),
    (
        {"ray_tune": {"search_space": {"lr": ["float", 1e-5, 1e-3, "log"]}}},
        "hpo.backend",
        "ray",
        "ray_tune",
        "hpo",
    ),
]


@pytest.mark.parametrize(
    ("patch", "field", "value", "old", "new"), MAPPINGS, ids=[f"{m[3]}->{m[1]}" for m in MAPPINGS]
)
def test_legacy_key_maps_onto_the_schema(
    tmp_path: Path, patch: dict, field: str, value: object, old: str, new: str
) -> None:
    config, notices = load(tmp_path, patch)
    assert get(config, field) == value
    notice = next((n for n in notices if n.startswith(f"{old}: ")), None)
    assert notice is not None, notices
    assert f"`{new}`" in notice and "\n" not in notice


def test_legacy_value_is_reported_with_the_modern_value(tmp_path: Path) -> None:
    _, notices = load(
        tmp_path, {"training": {"optimizer": "adamw_hf", "lr_scheduler": "constant_with_warmup"}}
    )
    assert any(n.startswith("training.optimizer: legacy value `adamw_hf` read as `adamw`") for n in notices)
    assert any(
        n.startswith("training.lr_scheduler: legacy value `constant_with_warmup` read as `constant`")
        for n in notices
    )


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet", "text", "txt"])
def test_dataset_dir_files_and_format(tmp_path: Path, fmt: str) -> None:
    suffix = {"text": "txt"}.get(fmt, fmt)
    config, notices = load(
        tmp_path,
        {
            "data": {
                "dataset": {
                    "dir": "corpus",
                    "train_file": f"train.{suffix}",
                    "validation_file": f"valid.{suffix}",
                    "test_file": f"test.{suffix}",
                    "dataset_format": fmt,
                }
            }
        },
    )
    dataset = config.data.dataset
    assert dataset.file_format == ("text" if fmt == "txt" else fmt)
    assert (dataset.train_file, dataset.validation_file, dataset.test_file) == tuple(
        str(tmp_path / "corpus" / f"{split}.{suffix}") for split in ("train", "valid", "test")
    )
    assert dataset.resolved_source() == "files"


@pytest.mark.parametrize("spelling", [{"load_from_disk": True, "dir": "saved"}, {"load_from_disk": "saved"}])
def test_load_from_disk(tmp_path: Path, spelling: dict) -> None:
    config, notices = load(tmp_path, {"data": {"dataset": {"train_file": None, **spelling}}})
    assert config.data.dataset.path == str(tmp_path / "saved")
    assert config.data.dataset.resolved_source() == "disk"
    assert any(
        n.startswith("data.dataset.load_from_disk: legacy key, read as `data.dataset.path`") for n in notices
    )


def test_hub_subset(tmp_path: Path) -> None:
    config, _ = load(
        tmp_path,
        {
            "data": {
                "dataset": {
                    "train_file": None,
                    "type": "huggingface",
                    "name": "glue",
                    "subset": "sst2",
                    "load_from_hub": True,
                }
            }
        },
    )
    assert (config.data.dataset.name, config.data.dataset.subset) == ("glue", "sst2")
    assert config.data.dataset.resolved_source() == "hub"


def test_ray_tune_block(tmp_path: Path) -> None:
    config, notices = load(
        tmp_path,
        {
            "ray_tune": {
                "metric": "eval_loss",
                "mode": "min",
                "num_samples": 8,
                "search_space": {"learning_rate": ["float", 1e-5, 1e-3, "log"], "lora_r": ["choice", 4, 8]},
            }
        },
    )
    hpo = config.hpo
    assert (hpo.enabled, hpo.backend, hpo.max_trials, hpo.direction) == (True, "ray", 8, "minimize")
    lr = parse_space("learning_rate", hpo.parameters["learning_rate"])
    assert (lr.path, lr.kind, lr.low, lr.high, lr.log) == (
        "training.learning_rate",
        "float",
        1e-5,
        1e-3,
        True,
    )
    r = parse_space("lora_r", hpo.parameters["lora_r"])
    assert (r.path, r.choices) == ("model.adapter.r", (4, 8))
    assert notices[0].startswith("ray_tune: legacy key, read as `hpo` (with backend: ray)")


def test_ray_tune_respects_an_explicit_hpo_enabled_false(tmp_path: Path) -> None:
    config, _ = load(
        tmp_path,
        {"hpo": {"enabled": False}, "ray_tune": {"search_space": {"lr": ["float", 1e-5, 1e-3, "log"]}}},
    )
    assert config.hpo.enabled is False and config.hpo.backend == "ray"


def test_hpo_search_space_with_short_names_is_checked(tmp_path: Path) -> None:
    config, _ = load(
        tmp_path,
        {
            "hpo": {
                "enabled": True,
                "strategy": "grid_search",
                "max_trials": 4,
                "search_space": {"learning_rate": [1e-4, 5e-4], "r": [4, 8]},
            }
        },
    )
    assert config.hpo.parameters == {"learning_rate": [1e-4, 5e-4], "r": [4, 8]}


# ---------------------------------------------------------------------------------- the real files
@pytest.mark.parametrize(
    "config",
    [REPO_ROOT / "configs" / "example_config.json", REPO_ROOT / "configs" / "bert_classifier_config.json"],
    ids=lambda p: p.name,
)
def test_legacy_example_configs_are_accepted_unchanged(config: Path) -> None:
    loaded = inspect_config(config)
    assert loaded.errors == [] and loaded.config is not None
    assert loaded.notices and all(p.severity == "notice" for p in loaded.notices)


def test_bert_classifier_config_values() -> None:
    config = inspect_config(REPO_ROOT / "configs" / "bert_classifier_config.json").config
    assert config is not None
    assert config.model.task == "sequence_classification"
    assert (config.model.adapter.r, config.model.adapter.alpha, config.model.adapter.dropout) == (8, 16, 0.1)
    assert config.data.tokenization.tokenizer == "distilbert-base-uncased"
    assert config.data.tokenization.max_length == 128
    assert config.training.eval_strategy == "epoch" and config.training.mixed_precision == "no"
    assert (config.hpo.backend, config.hpo.max_trials) == ("grid", 4)
    assert config.hpo.parameters == {"learning_rate": [0.0001, 0.0005], "r": [4, 8]}


@pytest.mark.parametrize("config", sorted(LEGACY_DIR.iterdir()), ids=lambda p: p.name)
def test_legacy_variant_files_validate(config: Path) -> None:
    loaded = inspect_config(config)
    assert loaded.errors == [], [p.render() for p in loaded.errors]
    assert loaded.notices


def test_trainer_dialect_file_values() -> None:
    config = inspect_config(LEGACY_DIR / "trainer_dialect.json").config
    assert config is not None
    tr = config.training
    assert (tr.epochs, tr.batch_size, tr.eval_batch_size, tr.gradient_accumulation_steps) == (2, 4, 8, 8)
    assert (tr.optimizer, tr.learning_rate, tr.weight_decay, tr.adam_beta1, tr.adam_beta2) == (
        "adamw",
        2e-4,
        0.01,
        0.9,
        0.95,
    )
    assert (tr.lr_scheduler, tr.warmup_steps) == ("cosine", 30)
    ds = config.data.dataset
    assert (ds.name, ds.subset, ds.split.train) == ("tatsu-lab/alpaca", "default", "train[:2000]")
    assert config.data.preprocessing.column_mapping == {"output": "response"}
    assert config.data.preprocessing.filter_columns == ["instruction", "input", "response"]
    adapter = config.model.adapter
    assert (adapter.type, adapter.r, adapter.alpha, adapter.dropout) == ("lora", 16, 32, 0.05)
    assert config.model.dtype == "bfloat16" and config.seed == 1234


def test_text_files_yaml_values() -> None:
    config = inspect_config(LEGACY_DIR / "text_files.yaml").config
    assert config is not None
    assert config.data.dataset.train_file == str(LEGACY_DIR / "corpus" / "poems_train.txt")
    assert config.data.dataset.file_format == "text"
    assert (config.model.adapter.r, config.model.adapter.alpha) == (8, 16)
    assert config.training.max_steps is None and config.training.epochs == 3  # max_steps: -1 meant "unset"
    assert (config.training.lr_scheduler, config.training.warmup_steps) == ("constant", 10)


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("patch", "path", "message", "fix"),
    [
        (
            {"model": {"type": "keras"}},
            "model.type",
            "legacy `type: keras` has no certain meaning here",
            "delete it; llmft always uses the Hugging Face stack",
        ),
        (
            {"model": {"adapter": {"type": "lora", "alpha": 16, "lora_alpha": 32}}},
            "model.adapter.lora_alpha",
            "both `model.adapter.lora_alpha` (legacy) and `model.adapter.alpha` are set, to different values",
            "keep only `model.adapter.alpha`",
        ),
        (
            {"training": {"optimizer": {"name": "adamw", "momentum": 0.9}}},
            "training.optimizer.momentum",
            "unknown legacy key `momentum`",
            "set the matching `training.` key instead",
        ),
        (
            {"training": {"learning_rate": 1e-4, "optimizer": {"name": "adamw", "lr": 3e-4}}},
            "training.optimizer.lr",
            "`training.optimizer.lr` and `training.learning_rate` disagree",
            "keep `training.learning_rate`",
        ),
        (
            {"training": {"fp16": True, "bf16": True}},
            "training.fp16",
            "fp16 and bf16 are both true",
            "set `training.mixed_precision: fp16` or `bf16`",
        ),
        (
            {"training": {"fp16": True, "mixed_precision": "bf16"}},
            "training.fp16",
            "fp16/bf16 contradict training.mixed_precision",
            "keep only mixed_precision",
        ),
        (
            {"data": {"preprocessing": {"type": "tabular"}}},
            "data.preprocessing.type",
            "legacy `type: tabular` has no certain meaning",
            "write `format:` with one of auto, text, alpaca, sharegpt, messages, classification",
        ),
        (
            {
                "data": {
                    "dataset": {"column_mapping": {"a": "b"}},
                    "preprocessing": {"column_mapping": {"a": "c"}},
                }
            },
            "data.dataset.column_mapping",
            "`column_mapping` is set in both data.dataset and data.preprocessing",
            "keep only `data.preprocessing.column_mapping`",
        ),
        (
            {"data": {"dataset": {"train_file": None, "load_from_disk": True}}},
            "data.dataset.load_from_disk",
            "legacy `load_from_disk` is set but no directory is given",
            "write `data.dataset.path:` with the directory written by `save_to_disk`",
        ),
        (
            {"hpo": {"metric": "eval_f1"}, "ray_tune": {"metric": "eval_loss"}},
            "ray_tune",
            "both the legacy `ray_tune` block and an `hpo` section are set",
            "move the `ray_tune` keys into `hpo` (with `backend: ray`) and delete `ray_tune`",
        ),
    ],
)
def test_uncertain_legacy_spelling_is_an_error_saying_what_to_write(
    tmp_path: Path, patch: dict, path: str, message: str, fix: str
) -> None:
    file = tmp_path / "legacy.json"
    file.write_text(json.dumps(merge(MINIMAL, patch)), encoding="utf-8")
    errors = inspect_config(file).errors
    assert [(p.path, p.message, p.fix) for p in errors if p.path == path] == [(path, message, fix)]


def test_normalising_is_idempotent_and_leaves_modern_configs_alone() -> None:
    modern = merge(
        MINIMAL,
        {
            "training": {"epochs": 2, "optimizer": "adamw"},
            "hpo": {"backend": "grid"},
            "model": {"adapter": {"type": "lora", "alpha": 8}},
        },
    )
    first = normalise_legacy(copy.deepcopy(modern))
    assert first.problems == []
    legacy = merge(MINIMAL, {"training": {"num_train_epochs": 2, "optim": "adamw_torch"}})
    once = normalise_legacy(copy.deepcopy(legacy))
    twice = normalise_legacy(copy.deepcopy(once.data))
    assert twice.data == once.data and twice.problems == []
