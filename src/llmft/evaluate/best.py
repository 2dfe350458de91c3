"""The best value of a metric so far: one rule for early stopping, the best checkpoint and the search."""

from __future__ import annotations

from dataclasses import dataclass

from llmft.config.metrics import lower_is_better


@dataclass
class Best:
    """Tracks the best value seen of ``metric``; which way is better comes from config/metrics.py."""

    metric: str
    lower: bool
    value: float | None = None

    @classmethod
    def of(cls, metric: str, direction: str | None = None, value: float | None = None) -> Best:
        """A tracker for ``metric``; ``direction`` (`minimize`/`maximize`) overrides the metric's own."""
        return cls(metric, lower_is_better(metric, direction), value)

    def beats(self, value: float, other: float | None) -> bool:
        """Whether ``value`` is better than ``other`` (anything beats None)."""
        if other is None:
            return True
        return value < other if self.lower else value > other

    def update(self, value: float) -> bool:
        """Take ``value`` if it is better than the best so far; returns whether it was."""
        if self.beats(value, self.value):
            self.value = value
            return True
        return False
