"""One rule for "better": the Best tracker, early stopping, save-best and the search read the same table."""

from __future__ import annotations

import pytest

from llmft.config.metrics import KNOWN_METRICS, metric_direction
from llmft.evaluate.best import Best


@pytest.mark.parametrize(
    ("metric", "values", "best"),
    [
        ("eval_loss", [3.0, 2.0, 2.5], 2.0),
        ("eval_perplexity", [9.0, 7.0, 8.0], 7.0),
        ("eval_accuracy", [0.5, 0.8, 0.7], 0.8),
        ("test_f1_macro", [0.1, 0.3, 0.2], 0.3),
        ("eval_custom_score", [1.0, 3.0, 2.0], 3.0),  # unknown names: higher is better
        ("eval_custom_loss", [3.0, 1.0, 2.0], 1.0),  # ... unless they end in loss
    ],
)
def test_best_keeps_the_better_value(metric: str, values: list[float], best: float) -> None:
    tracker = Best.of(metric)
    taken = [tracker.update(v) for v in values]
    assert tracker.value == best
    assert taken[0] and taken.count(True) == 2


def test_an_explicit_direction_overrides_the_table() -> None:
    assert Best.of("eval_loss", "maximize").beats(2.0, 1.0)
    assert not Best.of("eval_loss").beats(2.0, 1.0)


def test_every_known_metric_has_a_direction() -> None:
    assert all(metric_direction(m) in ("minimize", "maximize") for m in KNOWN_METRICS)


def test_the_search_uses_the_same_rule(tmp_path) -> None:  # noqa: ANN001
    from llmft.hpo.plan import SearchPlan

    plan = SearchPlan(
        base={},
        spaces=(),
        metric="eval_accuracy",
        direction="maximize",
        backend="grid",
        max_trials=1,
        output_dir=tmp_path,
    )
    assert plan.better(0.9, 0.8) == Best.of("eval_accuracy").beats(0.9, 0.8) is True
