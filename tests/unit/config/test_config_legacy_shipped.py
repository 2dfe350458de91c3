"""What the legacy framework's own config files carry, accepted with notices (issue 9, part 1): `optim`
next to `optimizer`, `evaluation.batch_size`, accuracy/F1 asked of a causal LM, numbers quoted in
`hpo.parameters`, `is_regression: false`; and the table in config/legacy.py as the one source of truth."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from llmft.cli.main import main
from llmft.config import legacy
from llmft.config.legacy import LEGACY_KEYS, STEPS, modern_path, normalise_legacy
from llmft.config.legacy_steps import Rename
from llmft.config.load import inspect_config

REPO_ROOT = Path(__file__).resolve().parents[3]
LEGACY_DIR = REPO_ROOT / "tests" / "data" / "legacy_configs"
CAUSAL = LEGACY_DIR / "shipped_causal_lm.json"
CLASSIFIER = LEGACY_DIR / "shipped_classifier.json"
MINIMAL = {"data": {"dataset": {"train_file": "train.jsonl"}}, "model": {"name_or_path": "gpt2"}}


def notices_of(path: Path) -> list[str]:
    loaded = inspect_config(path)
    assert loaded.errors == [], [p.render() for p in loaded.errors]
    return [f"{p.path}: {p.message}" for p in loaded.notices]


def problems(tmp_path: Path, patch: dict) -> tuple[list[str], list[str]]:
    """(errors, notices) of MINIMAL + patch (sections merged one level deep), as `path: message`."""
    data = copy.deepcopy(MINIMAL)
    for key, value in patch.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = inspect_config(path)
    return [f"{p.path}: {p.message}" for p in loaded.errors], [
        f"{p.path}: {p.message}" for p in loaded.notices
    ]


CAUSAL_NOTICES = [
    "training.optim: legacy key, read as `training.optimizer` (Hugging Face's name for it)",
    "evaluation.batch_size: legacy key, read as `training.eval_batch_size`",
    "evaluation.metrics: f1 dropped: precision/recall/F1 have no meaning for a causal_lm model "
    "(accuracy there is next-token accuracy)",
    "hpo.parameters.learning_rate: numbers written as strings read as numbers: [1e-05, 5e-05]",
    "hpo.parameters.lora_r: numbers written as strings read as numbers: [8, 16]",
    "training.is_regression: legacy `is_regression: false` is implied (classification, or not a classifier)",
    "hpo.backend: legacy value `grid_search` read as `grid`",
    "model.model_type: legacy key, read as `model.task`",
    "model.type: legacy `type: huggingface` is implied and ignored",
    "data.dataset.dataset_format: legacy key, read as `data.dataset.file_format`",
]


def test_shipped_causal_lm_file_is_read_with_notices() -> None:
    notices = notices_of(CAUSAL)
    assert [n for n in CAUSAL_NOTICES if n not in notices] == [], notices
    config = inspect_config(CAUSAL).config
    assert config is not None
    tr = config.training
    assert (tr.optimizer, tr.eval_batch_size, tr.batch_size) == ("adamw", 8, 4)
    assert config.model.task == "causal_lm" and config.evaluation.metrics == ["accuracy"]
    assert config.hpo.enabled is False and config.hpo.backend == "grid"
    assert config.hpo.parameters == {"learning_rate": [1e-5, 5e-5], "lora_r": [8, 16]}
    ds = config.data.dataset
    assert ds.train_file == str(LEGACY_DIR / "instructions" / "train.json") and ds.file_format == "json"


def test_shipped_classifier_file_keeps_its_classification_metrics() -> None:
    notices = notices_of(CLASSIFIER)
    assert "training.optim: legacy key, read as `training.optimizer` (Hugging Face's name for it)" in notices
    assert not any(n.startswith("evaluation.metrics") for n in notices)
    config = inspect_config(CLASSIFIER).config
    assert config is not None
    assert config.evaluation.metrics == ["accuracy", "precision", "recall", "f1"]
    assert (config.training.eval_batch_size, config.training.optimizer) == (32, "adamw")
    assert config.hpo.parameters["weight_decay"] == [0.0, 0.01]


@pytest.mark.parametrize("path", [CAUSAL, CLASSIFIER], ids=lambda p: p.name)
def test_validate_cli_accepts_the_shipped_files(
    path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Beside the data files they name (`dir` + `*_file`), which validate checks are there."""
    dataset = json.loads(path.read_text(encoding="utf-8"))["data"]["dataset"]
    for key in ("train_file", "validation_file", "test_file"):
        if key in dataset:
            (tmp_path / dataset["dir"]).mkdir(exist_ok=True)
            (tmp_path / dataset["dir"] / dataset[key]).write_text("[]")
    path = Path(shutil.copy(path, tmp_path))
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert f"{path}: valid" in captured.out + captured.err
    assert "training.optim: legacy key, read as `training.optimizer`" in captured.out + captured.err


def test_f1_for_a_causal_lm_stays_an_error_in_a_modern_config(tmp_path: Path) -> None:
    errors, _ = problems(
        tmp_path, {"model": {"task": "causal_lm"}, "evaluation": {"metrics": ["accuracy", "f1"]}}
    )
    assert errors == ["evaluation.metrics: f1 needs a classification task, but model.task is causal_lm"]


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        (
            {"training": {"is_regression": True}},
            "training.is_regression: legacy `is_regression: True`: llmft trains classifiers (cross-entropy), "
            "not regression",
        ),
        (
            {"training": {"eval_batch_size": 16}, "evaluation": {"batch_size": 8}},
            "evaluation.batch_size: both `evaluation.batch_size` (legacy) and `training.eval_batch_size` are "
            "set, to different values",
        ),
    ],
)
def test_what_cannot_be_read_is_an_error(tmp_path: Path, patch: dict, error: str) -> None:
    errors, _ = problems(tmp_path, patch)
    assert errors == [error]


@pytest.mark.parametrize(
    ("space", "read_as"),
    [
        (["1e-5", "5e-5"], [1e-5, 5e-5]),
        (["8", 16], [8, 16]),
        (["float", "1e-5", "1e-3", "log"], ["float", 1e-5, 1e-3, "log"]),
        ({"low": "1e-5", "high": "1e-3", "log": True}, {"low": 1e-5, "high": 1e-3, "log": True}),
        (["linear", "cosine"], ["linear", "cosine"]),  # text values stay text
        (["1e-5", "fast"], ["1e-5", "fast"]),  # not all numbers: left for the space check to report
    ],
)
def test_numbers_quoted_in_a_space(space: object, read_as: object) -> None:
    state = normalise_legacy({"hpo": {"parameters": {"p": copy.deepcopy(space)}}})
    assert state.data["hpo"]["parameters"]["p"] == read_as  # type: ignore[index]
    assert bool(state.problems) == (space != read_as)


# ------------------------------------------------------------------------------ one source of truth
def test_every_moved_key_is_a_listed_legacy_key() -> None:
    """The drift issue 9 found: moved, but not offered by did-you-mean."""
    assert {"n_trials", "num_trials", "search_strategy"} <= set(LEGACY_KEYS["hpo"])
    assert "pretrained_model_name_or_path" in LEGACY_KEYS["model"]
    assert "batch_size" in LEGACY_KEYS["evaluation"] and "optim" in LEGACY_KEYS["training"]
    for step in STEPS:
        if isinstance(step, Rename):
            section, _, key = step.old.rpartition(".")
            assert key in LEGACY_KEYS[section] and modern_path(section, key) == step.new


@pytest.mark.parametrize("step", [s for s in STEPS if isinstance(s, Rename)], ids=lambda s: s.old)
def test_each_rename_is_applied_and_reported(step: Rename) -> None:
    raw: dict = {}
    node = raw
    *parents, key = step.old.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[key] = "v"
    state = normalise_legacy(raw)
    node = state.data
    for part in step.new.split("."):
        node = node[part]  # type: ignore[index,assignment]
    assert node == "v"
    assert [(p.path, p.message) for p in state.problems][:1] == [
        (step.old, f"legacy key, read as `{step.new}`")
    ]


def test_config_md_legacy_section_lists_every_rename() -> None:
    text = (REPO_ROOT / "docs" / "CONFIG.md").read_text(encoding="utf-8")
    for step in STEPS:
        if isinstance(step, Rename):
            assert f"| `{step.old}` | `{step.new}` |" in text
    assert "| `paged_adamw_8bit` | not implemented |" in text
    assert legacy.legacy_markdown() in text
