"""Run and search folders written the way llmft writes them (no training: the report only reads files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml


def _make_run(folder: Path, lr: float, steps: int = 6, samples: bool = False) -> Path:
    """A finished run's files, with a loss that falls faster for a larger learning rate."""
    folder.mkdir(parents=True)
    config = {"output_dir": str(folder), "training": {"learning_rate": lr, "max_steps": steps}, "seed": 0}
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    lines = []
    for step in range(1, steps + 1):
        loss = 3.0 / (1 + lr * 100 * step)
        lines.append(
            {
                "step": step,
                "epoch": 0,
                "loss": loss,
                "learning_rate": lr * (1 - step / steps),
                "tokens_seen": 100 * step,
                "tokens_per_second": 500.0 + step,
                "grad_norm": 1.0 / step,
            }
        )
        if step % 3 == 0:
            lines.append({"step": step, "epoch": 0, "eval_loss": loss + 0.1, "eval_accuracy": 0.5 + lr})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    final = {"eval_loss": lines[-1]["eval_loss"], "eval_accuracy": 0.5 + lr, "eval_tokens": 40}
    (folder / "eval_results.json").write_text(json.dumps(final), encoding="utf-8")
    split = {
        "rows_in": 50,
        "kept": 48,
        "dropped": {"empty response": 2},
        "changed": {},
        "rows": 48,
        "truncated": 3,
        "dropped_too_long": 0,
        "trained_tokens": 900,
        "length_percentiles": {"p50": 20, "p90": 30, "p99": 31, "max": 32},
        "length_histogram": {"edges": [10, 15, 20, 25, 30, 35], "counts": [4, 10, 20, 10, 4]},
    }
    report = {"origin": "train.jsonl", "format": "alpaca", "template": "chatml", "splits": {"train": split}}
    (folder / "data_report.json").write_text(json.dumps(report), encoding="utf-8")
    info = {
        "task": "causal_lm",
        "steps": steps,
        "tokens_seen": 100 * steps,
        "stop_reason": "completed",
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:01:30+00:00",
    }
    (folder / "run.json").write_text(json.dumps(info), encoding="utf-8")
    if samples:
        rows = [{"prompt": "Say <b>hi</b>", "output": "hi & bye"}]
        (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def _make_search(folder: Path) -> Path:
    trials = []
    for number, lr in enumerate([1e-3, 1e-2, 1e-4]):
        run = _make_run(folder / "trials" / f"{number:03d}", lr)
        value = json.loads((run / "eval_results.json").read_text())["eval_loss"]
        trials.append(
            {
                "number": number,
                "params": {"training.learning_rate": lr},
                "state": "complete",
                "value": value,
                "steps": 6,
                "duration_s": 12.5,
                "error": None,
                "trial_dir": str(run),
            }
        )
    trials.sort(key=lambda t: t["value"])
    results = {
        "metric": "eval_loss",
        "direction": "minimize",
        "backend": "optuna",
        "max_trials": 3,
        "spaces": {"training.learning_rate": "choice of [0.001, 0.01, 0.0001]"},
        "best_trial": trials[0]["number"],
        "best_value": trials[0]["value"],
        "trials": trials,
    }
    (folder / "hpo_results.json").write_text(json.dumps(results), encoding="utf-8")
    return folder


@pytest.fixture
def make_run():  # noqa: ANN201
    return _make_run


@pytest.fixture
def make_search():  # noqa: ANN201
    return _make_search
