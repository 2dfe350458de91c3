"""Rules of a hyperparameter search, checked when a config is loaded (``llmft validate``), before any trial.

They live in config/ (which imports nothing above it); ``llmft.hpo.plan`` uses them when it makes the plan.
"""

from __future__ import annotations

import difflib

from llmft.config.metrics import GENERATION_SCORES, HIGHER_IS_BETTER, KNOWN_METRICS, metric_direction
from llmft.config.schema import RunConfig
from llmft.config.space import Space, parse_space
from llmft.errors import Problem


def _check_metric(config: RunConfig) -> list[Problem]:
    hpo = config.hpo
    sets = [view.dataset for _, view in config.data.sets()]
    if hpo.metric not in KNOWN_METRICS:
        near = difflib.get_close_matches(hpo.metric, KNOWN_METRICS, n=3)
        suggestion = " or ".join(near) if near else "e.g. eval_loss, eval_accuracy or eval_f1"
        return [
            Problem("hpo.metric", f"`{hpo.metric}` is not a metric llmft reports", fix=f"use {suggestion}")
        ]
    name = hpo.metric.split("_", 1)[1]
    task = config.model.task
    if name in GENERATION_SCORES:
        if config.evaluation.generate is None:
            return [
                Problem(
                    "hpo.metric",
                    f"{hpo.metric} is a score of evaluation by generation, "
                    "which this config does not turn on",
                    fix="add `evaluation: {generate: {}}` (scores on the final model), or use eval_loss",
                )
            ]
        return []
    if name == "accuracy" and task in ("causal_lm", "seq2seq_lm"):
        if "accuracy" not in (config.evaluation.metrics or []):
            message = f"{hpo.metric} (next-token accuracy) is measured for a {task} model only when asked for"
            return [Problem("hpo.metric", message, fix="add accuracy to evaluation.metrics")]
    elif name in HIGHER_IS_BETTER and task in ("causal_lm", "seq2seq_lm"):
        return [
            Problem(
                "hpo.metric",
                f"{hpo.metric} needs a classification task, but model.task is {task}",
                fix="use eval_loss, eval_perplexity or eval_accuracy (next-token accuracy)",
            )
        ]
    if name == "perplexity" and task == "sequence_classification":
        return [
            Problem(
                "hpo.metric", "perplexity needs a language-model task", fix="use eval_loss or eval_accuracy"
            )
        ]
    has_validation = any(
        ds.validation_file or ds.split.validation or ds.validation_fraction > 0 for ds in sets
    )
    if hpo.metric.startswith("eval_") and not has_validation:
        return [
            Problem(
                "hpo.metric",
                f"{hpo.metric} is measured on validation data, and there is none "
                "(no validation file or split, validation_fraction is 0)",
                fix="set data.dataset.validation_fraction: 0.1 or a validation_file",
            )
        ]
    if hpo.metric.startswith("test_") and not any(ds.test_file or ds.split.test for ds in sets):
        return [
            Problem(
                "hpo.metric",
                f"{hpo.metric} is measured on test data, and there is none",
                fix="set data.dataset.test_file (or split.test), or use an eval_ metric",
            )
        ]
    return []


def _check_direction(config: RunConfig) -> list[Problem]:
    hpo = config.hpo
    natural = metric_direction(hpo.metric)
    if "direction" in hpo.model_fields_set and natural and hpo.direction not in (natural, "auto"):
        return [
            Problem(
                "hpo.direction",
                f"{hpo.direction} {hpo.metric} looks for the worst trial",
                fix=f"set hpo.direction: {natural}",
                severity="warning",
            )
        ]
    return []


def _check_algorithm(config: RunConfig, spaces: list[Space]) -> list[Problem]:
    hpo = config.hpo
    algo = hpo.search_algorithm
    if algo in ("hyperopt", "bayesopt") and hpo.backend != "ray":
        return [
            Problem(
                "hpo.search_algorithm",
                f"{algo} is a Ray Tune search algorithm, and backend is {hpo.backend}",
                fix="set hpo.backend: ray, or use backend optuna (TPE)",
            )
        ]
    if algo == "bayesopt" and any(s.kind == "choice" for s in spaces):
        lists = ", ".join(s.path for s in spaces if s.kind == "choice")
        return [
            Problem(
                "hpo.search_algorithm",
                f"bayesopt searches numeric ranges only, and {lists} is a list",
                fix="use search_algorithm: optuna or hyperopt, or write the space as {low, high}",
            )
        ]
    if algo and hpo.backend == "grid":
        return [
            Problem(
                "hpo.search_algorithm",
                f"{algo} is ignored by the grid backend",
                severity="warning",
                fix="set hpo.backend: optuna or ray to use it",
            )
        ]
    return []


def _check_backend_options(config: RunConfig) -> list[Problem]:
    hpo, tr = config.hpo, config.training
    problems = []
    if hpo.storage and hpo.backend != "optuna":
        problems.append(
            Problem(
                "hpo.storage",
                f"storage is an Optuna setting; the {hpo.backend} backend ignores it",
                severity="warning",
                fix="set hpo.backend: optuna, or remove hpo.storage",
            )
        )
    if hpo.ray_address and hpo.backend != "ray":
        problems.append(
            Problem(
                "hpo.ray_address",
                f"ray_address is ignored by the {hpo.backend} backend",
                severity="warning",
                fix="set hpo.backend: ray, or remove hpo.ray_address",
            )
        )
    prunes = hpo.backend in ("optuna", "ray") and hpo.pruner != "none"
    if prunes and tr.eval_strategy == "no":
        problems.append(
            Problem(
                "hpo.pruner",
                "trials evaluate only at the end (training.eval_strategy is "
                "`no`), so none can be stopped early",
                severity="warning",
                fix="set training.eval_strategy: epoch (or steps with eval_steps)",
            )
        )
    elif prunes and hpo.metric.startswith("test_"):
        problems.append(
            Problem(
                "hpo.pruner",
                f"{hpo.metric} is measured only at the end, so no trial can be stopped early",
                severity="warning",
                fix="optimise an eval_ metric",
            )
        )
    return problems


def check_search(config: RunConfig) -> list[Problem]:
    """Rules of a search beyond the spaces themselves (config/checks.py checks those): errors and warnings."""
    spaces = []
    for name, spec in config.hpo.parameters.items():
        try:
            spaces.append(parse_space(name, spec))
        except (TypeError, ValueError, ArithmeticError):  # reported by config/checks.py
            continue
    return [
        *_check_metric(config),
        *_check_direction(config),
        *_check_algorithm(config, spaces),
        *_check_backend_options(config),
    ]
