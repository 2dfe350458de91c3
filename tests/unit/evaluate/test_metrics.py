"""Classification metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from llmft.evaluate.metrics import classification_metrics, perplexity


def test_binary_metrics_use_class_one_as_positive() -> None:
    preds = [1, 1, 0, 0, 1, 0]
    labels = [1, 0, 0, 1, 1, 0]
    m = classification_metrics(preds, labels, 2)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["f1_macro"] == pytest.approx(2 / 3)


def test_macro_metrics_with_three_classes_and_an_unpredicted_class() -> None:
    m = classification_metrics([0, 0, 1, 1], [0, 2, 1, 1], 3)
    assert m["accuracy"] == pytest.approx(0.75)
    # class 0: p=1/2 r=1; class 1: p=1 r=1; class 2: p=0 r=0
    assert m["precision_macro"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert m["recall_macro"] == pytest.approx((1 + 1 + 0) / 3)
    assert m["f1"] == m["f1_macro"]


def test_perplexity_is_exp_loss_and_capped() -> None:
    assert perplexity(math.log(7.0)) == pytest.approx(7.0)
    assert math.isfinite(perplexity(1e9))
