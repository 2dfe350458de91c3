"""Searches over the real training pipeline: tiny BERT + LoRA on the learnable synthetic classification task.

Every trial trains for real (one torch thread, max_length 64, a few dozen steps), so what is checked is what
a user gets: the settings that learn win, the best config reproduces its trial, bad trials are pruned early,
and a trial that raises fails alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.matrix import THREADS

from llmft.config.load import load_config
from llmft.hpo.search import run_search
from llmft.pipeline import run

LEARNS, STUCK = 5e-3, 1e-7


def classification_config(
    tmp_path: Path,
    tiny_model,
    synth_data,
    *,
    rows: int,
    training: dict,  # noqa: ANN001
    hpo: dict,
    name: str = "search",
) -> Path:
    files = synth_data("classification", rows=rows)
    config = {
        "output_dir": str(tmp_path / name),
        "data": {
            "dataset": {"train_file": str(files["train"]), "validation_file": str(files["validation"])},
            "tokenization": {"max_length": 64},
        },
        "model": {"name_or_path": str(tiny_model("bert")), "adapter": {"type": "lora", "r": 8}},
        "training": {"num_threads": THREADS, "logging_steps": 5, **training},
        "hpo": {"enabled": True, **hpo},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def search(path: Path, overrides: list[str] | None = None):  # noqa: ANN201
    lines: list[str] = []
    result = run_search(load_config(path, overrides), say=lines.append, progress=False)
    return result, lines


def test_grid_finds_the_settings_that_learn_and_its_best_config_reproduces_the_trial(
    tiny_model, synth_data, tmp_path: Path
) -> None:  # noqa: ANN001
    path = classification_config(
        tmp_path,
        tiny_model,
        synth_data,
        rows=400,
        training={"epochs": 4, "batch_size": 16, "eval_strategy": "epoch"},
        hpo={
            "backend": "grid",
            "metric": "eval_accuracy",
            "direction": "maximize",
            "refit": True,
            "parameters": {"learning_rate": [STUCK, LEARNS], "r": [4, 8]},
        },
    )
    result, _ = search(path)
    out = tmp_path / "search"

    assert len(result.trials) == 4 and {t.state for t in result.trials} == {"complete"}
    best = result.best
    assert best is not None and best.params["training.learning_rate"] == LEARNS
    assert best.value is not None and best.value >= 0.75
    stuck = [t.value for t in result.trials if t.params["training.learning_rate"] == STUCK]
    assert all(v is not None and v <= 0.6 for v in stuck), stuck
    for number in range(4):  # each trial is a run directory of its own
        trial = out / "trials" / f"{number:03d}"
        files = {p.name for p in trial.iterdir()}
        assert {"config.yaml", "eval_results.json", "metrics.jsonl", "trial.json"} <= files
        assert yaml.safe_load((trial / "config.yaml").read_text())["output_dir"] == str(trial)

    # hpo.refit: the best config trained once more is the run's model
    assert (out / "model").is_dir() and (out / "eval_results.json").exists()
    assert result.refit_metrics is not None
    assert result.refit_metrics["eval_accuracy"] == pytest.approx(best.value, abs=1e-6)

    # best_config.yaml runs as is, the search switched off, and gives the trial's number again
    config = load_config(out / "best_config.yaml")
    assert config.hpo.enabled is False and config.output_dir == str(out / "best")
    again = run(config, say=lambda _: None, progress=False)
    assert again.metrics["eval_accuracy"] == pytest.approx(best.value, abs=1e-6)
    assert again.metrics["eval_loss"] == pytest.approx(best.metrics["eval_loss"], abs=1e-6)
    saved = json.loads((out / "hpo_results.json").read_text())
    assert saved["best_trial"] == best.number and saved["best_params"] == best.params


def test_optuna_median_pruner_stops_a_hopeless_trial_early(tiny_model, synth_data, tmp_path: Path) -> None:  # noqa: ANN001
    path = classification_config(
        tmp_path,
        tiny_model,
        synth_data,
        rows=100,
        training={"epochs": 3, "batch_size": 8, "eval_strategy": "steps", "eval_steps": 5},
        hpo={
            "backend": "optuna",
            "metric": "eval_loss",
            "max_trials": 5,
            "pruner": "median",
            "parameters": {"learning_rate": [1e-2, STUCK]},
        },
    )
    result, lines = search(path)
    pruned = [t for t in result.trials if t.state == "pruned"]
    complete = [t for t in result.trials if t.state == "complete"]
    assert len(result.trials) == 5
    assert pruned, lines
    assert all(t.params["training.learning_rate"] == STUCK for t in pruned)
    assert max(t.steps or 0 for t in pruned) < min(t.steps or 0 for t in complete)
    assert result.best is not None and result.best.params["training.learning_rate"] == 1e-2
    assert (tmp_path / "search" / "hpo.db").exists()
    trial_dir = tmp_path / "search" / "trials" / f"{pruned[0].number:03d}"
    record = json.loads((trial_dir / "trial.json").read_text())
    assert record["state"] == "pruned"


def test_a_trial_that_raises_is_recorded_as_failed_and_the_search_completes(
    tiny_model, synth_data, tmp_path: Path
) -> None:  # noqa: ANN001
    path = classification_config(
        tmp_path,
        tiny_model,
        synth_data,
        rows=100,
        training={"max_steps": 4, "batch_size": 8, "eval_strategy": "no"},
        hpo={
            "backend": "grid",
            "metric": "eval_loss",
            "parameters": {"model.adapter.target_modules": [["no_such_module"], ["query", "value"]]},
        },
    )
    result, lines = search(path)
    by_modules = {tuple(t.params["model.adapter.target_modules"]): t for t in result.trials}  # type: ignore[arg-type]
    failed = by_modules[("no_such_module",)]
    assert failed.state == "failed" and "no_such_module" in (failed.error or "")
    assert by_modules[("query", "value")].state == "complete"
    assert result.best is by_modules[("query", "value")]
    assert any(line.startswith("trial 0 failed") for line in lines)
    row = (tmp_path / "search" / "hpo_results.csv").read_text().splitlines()[2]
    assert row.startswith("0,failed,,")
