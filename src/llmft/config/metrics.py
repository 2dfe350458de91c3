"""Metric names llmft reports and which direction is better: the one table every part reads.

Early stopping, the best checkpoint and the search all decide "is this value better" through
``metric_direction``; the names are checked against ``KNOWN_METRICS`` where a config names a metric.
"""

from __future__ import annotations

SPLITS = ("eval", "test")
LOWER_IS_BETTER = ("loss", "perplexity")
# Scores of evaluation by generation (evaluation.generate), all higher-is-better.
GENERATION_SCORES = ("exact_match", "rouge1", "rouge2", "rougeL", "bleu", "chrf")
HIGHER_IS_BETTER = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    *GENERATION_SCORES,
)
# Preference objectives (DPO, SimPO, ORPO, KTO): TRL's names; reward models report accuracy and margin.
# The chosen side's reward/log-prob up is better, the rejected side's down; a smaller KL (KTO) is closer to
# the reference. Kept apart from HIGHER_IS_BETTER, which the search checks read as "needs a classification
# task".
PREFERENCE_HIGHER = ("rewards/accuracies", "rewards/margins", "margin", "rewards/chosen", "logps/chosen")
PREFERENCE_LOWER = ("rewards/rejected", "logps/rejected", "kl")
KNOWN_METRICS = tuple(
    f"{split}_{name}"
    for split in SPLITS
    for name in LOWER_IS_BETTER + HIGHER_IS_BETTER + PREFERENCE_HIGHER + PREFERENCE_LOWER
)


def metric_direction(metric: str) -> str | None:
    """`minimize` or `maximize` for a metric (with or without its split prefix); None when the name does
    not say."""
    split, _, rest = metric.partition("_")
    name = rest if split in SPLITS and rest else metric
    if name in LOWER_IS_BETTER + PREFERENCE_LOWER:
        return "minimize"
    return "maximize" if name in HIGHER_IS_BETTER + PREFERENCE_HIGHER else None


def lower_is_better(metric: str, direction: str | None = None) -> bool:
    """Whether smaller values of ``metric`` are better: ``direction`` when given, else the table; a name the
    table does not know counts as higher-is-better, unless it ends in `loss` or `perplexity`."""
    direction = direction or metric_direction(metric)
    if direction is None:
        return metric.endswith(LOWER_IS_BETTER)
    return direction == "minimize"


def missing_scoring_packages() -> list[str]:
    """Distributions evaluation by generation needs that are not installed (found without importing them)."""
    from importlib.util import find_spec

    needed = {"rouge-score": "rouge_score", "sacrebleu": "sacrebleu"}
    return [name for name, module in needed.items() if find_spec(module) is None]
