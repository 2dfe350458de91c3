"""Optimizer names (config/optimizers.py): Hugging Face's `optim` names that mean what llmft runs are read as
llmft's with a notice, a real conflict with `optimizer` is an error, and names llmft does not implement are
refused with the list of what it does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from llmft.config.load import inspect_config
from llmft.config.optimizers import IMPLEMENTED, OPTIMIZER_NAMES
from llmft.config.schema import TrainingConfig

MINIMAL = {"data": {"dataset": {"train_file": "train.jsonl"}}, "model": {"name_or_path": "gpt2"}}
IMPLEMENTED_FIX = (
    "use one of: adamw, sgd, adafactor, adamw_8bit (Hugging Face names read as these: adamw_torch, "
    "adamw_torch_fused, adamw_hf, adam, adamw_bnb_8bit)"
)


def inspect(tmp_path: Path, training: dict):  # noqa: ANN201
    path = tmp_path / "run.json"
    path.write_text(json.dumps({**MINIMAL, "training": training}), encoding="utf-8")
    return inspect_config(path)


def test_the_table_names_every_hugging_face_optimizer() -> None:
    from transformers.training_args import OptimizerNames

    hugging_face = {name.value for name in OptimizerNames}
    assert hugging_face <= set(OPTIMIZER_NAMES), sorted(hugging_face - set(OPTIMIZER_NAMES))
    # llmft's own names, and names of transformers 4.x that 5.x dropped (legacy files still carry them)
    assert set(OPTIMIZER_NAMES) - hugging_face <= {"adamw", "adam", "adamw_hf", "adamw_apex_fused"}


def test_what_the_table_runs_is_what_the_schema_accepts() -> None:
    accepted = set(get_args(TrainingConfig.model_fields["optimizer"].annotation))
    assert accepted == set(IMPLEMENTED)
    assert {e.runs for e in OPTIMIZER_NAMES.values() if e.runs} == accepted


@pytest.mark.parametrize(
    ("training", "runs"),
    [
        ({"optimizer": "adamw", "optim": "adamw_torch"}, "adamw"),
        ({"optimizer": "adamw", "optim": "adamw_torch_fused"}, "adamw"),
        ({"optimizer": "adamw_torch", "optim": "adamw_hf"}, "adamw"),
        ({"optim": "adafactor"}, "adafactor"),
        ({"optim": "adamw_bnb_8bit"}, "adamw_8bit"),
        ({"optimizer": "adamw_8bit", "optim": "adamw_bnb_8bit"}, "adamw_8bit"),
        ({"optim": "sgd"}, "sgd"),
    ],
)
def test_names_that_mean_the_same_optimizer_are_accepted(tmp_path: Path, training: dict, runs: str) -> None:
    loaded = inspect(tmp_path, training)
    assert loaded.errors == [] and loaded.config is not None, [p.render() for p in loaded.errors]
    assert loaded.config.training.optimizer == runs
    notices = [p.render() for p in loaded.notices]
    assert any(n.startswith("training.optim: legacy key, read as `training.optimizer`") for n in notices)


@pytest.mark.parametrize("optimizer", ["sgd", {"name": "sgd", "lr": 1e-3}])
def test_a_real_conflict_is_an_error(tmp_path: Path, optimizer: object) -> None:
    [error] = inspect(tmp_path, {"optimizer": optimizer, "optim": "adamw_torch"}).errors
    assert (error.path, error.message, error.fix) == (
        "training.optim",
        "`training.optim: adamw_torch` and `training.optimizer: sgd` name different optimizers",
        "keep only `training.optimizer`",
    )


@pytest.mark.parametrize("key", ["optim", "optimizer"])
def test_a_name_llmft_does_not_implement_lists_what_it_does(tmp_path: Path, key: str) -> None:
    [error] = inspect(tmp_path, {key: "paged_adamw_8bit"}).errors
    assert (error.path, error.message, error.fix) == (
        f"training.{key}",
        "optimizer `paged_adamw_8bit` is not implemented in llmft (paging moves optimizer state to CPU "
        "memory when the GPU runs out; llmft does not page; use adamw_8bit)",
        IMPLEMENTED_FIX,
    )
    [error] = inspect(tmp_path, {key: "lion_8bit"}).errors
    assert (error.message, error.fix) == (
        "optimizer `lion_8bit` is not implemented in llmft",
        IMPLEMENTED_FIX,
    )


def test_adafactor_refuses_the_adam_only_settings(tmp_path: Path) -> None:
    [error] = inspect(tmp_path, {"optimizer": "adafactor", "adam_beta2": 0.95}).errors
    assert (error.message, error.fix) == (
        "adam_beta2 set, but adafactor does not use them",
        "delete `adam_beta2`, or use optimizer: adamw",
    )
