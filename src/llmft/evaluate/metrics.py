"""Metrics from predictions and labels, in plain Python/torch (no sklearn dependency)."""

from __future__ import annotations

import math


def classification_metrics(preds: list[int], labels: list[int], num_labels: int) -> dict[str, float]:
    """Accuracy, binary precision/recall/F1 (positive class = id 1) when 2 classes, and macro F1/P/R."""
    n = len(labels)
    out: dict[str, float] = {"accuracy": sum(p == y for p, y in zip(preds, labels)) / n if n else 0.0}
    per_class = [_prf(preds, labels, c) for c in range(num_labels)]
    out["precision_macro"] = sum(p for p, _, _ in per_class) / num_labels
    out["recall_macro"] = sum(r for _, r, _ in per_class) / num_labels
    out["f1_macro"] = sum(f for _, _, f in per_class) / num_labels
    if num_labels == 2:
        out["precision"], out["recall"], out["f1"] = per_class[1]
    else:
        out["precision"], out["recall"], out["f1"] = (
            out["precision_macro"],
            out["recall_macro"],
            out["f1_macro"],
        )
    return out


def _prf(preds: list[int], labels: list[int], cls: int) -> tuple[float, float, float]:
    tp = sum(p == cls and y == cls for p, y in zip(preds, labels))
    fp = sum(p == cls and y != cls for p, y in zip(preds, labels))
    fn = sum(p != cls and y == cls for p, y in zip(preds, labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def perplexity(mean_loss: float) -> float:
    """exp(loss), capped so a diverged run reports a large number instead of overflowing."""
    return math.exp(min(mean_loss, 50.0))
