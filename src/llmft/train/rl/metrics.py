"""What an online RL run logs: its metrics per logging step and a sample of its completions.

The rollout source adds each generation batch's numbers (rewards, lengths, truncation) and the loss adds
each micro-batch's (clip ratios, KL, entropy); ``report`` gives their average since the last logging step
(the smallest of the ``*_min`` values, the largest of the ``*_max`` ones), under TRL 1.16's metric names so
curves compare. ``Samples`` appends one generation batch's first completions per logging step to the run's
rollouts file, which ``llmft report`` shows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RolloutStats:
    """Values since the last report, per metric name."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if not math.isnan(value):
                self.values.setdefault(name, []).append(float(value))

    def report(self, mode: str = "train") -> dict[str, float]:
        """The averages since the last call (training only: evaluation has no rollouts), then reset."""
        if mode != "train":
            return {}
        out = {name: _combine(name, vals) for name, vals in self.values.items() if vals}
        self.values = {}
        return out


def _combine(name: str, values: list[float]) -> float:
    if name.endswith(("_min", "/min_length")):
        return min(values)
    if name.endswith(("_max", "/max_length")):
        return max(values)
    return math.fsum(values) / len(values)


def reward_metrics(names: list[str], per_function: list[list[float]], total: list[float]) -> dict[str, float]:
    """reward / reward_std overall and rewards/{name}/mean, /std per function (NaN values left out)."""
    out = {"reward": _mean(total), "reward_std": _std(total)}
    for name, values in zip(names, per_function, strict=True):
        out[f"rewards/{name}/mean"] = _mean(values)
        out[f"rewards/{name}/std"] = _std(values)
    return out


def length_metrics(lengths: list[int], truncated: list[bool]) -> dict[str, float]:
    """completions/mean_length, /min_length, /max_length and /clipped_ratio (cut off by the limit)."""
    if not lengths:
        return {}
    return {
        "completions/mean_length": sum(lengths) / len(lengths),
        "completions/min_length": float(min(lengths)),
        "completions/max_length": float(max(lengths)),
        "completions/clipped_ratio": sum(truncated) / len(truncated),
    }


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return math.fsum(kept) / len(kept) if kept else math.nan


def _std(values: list[float]) -> float:
    """Sample std (n-1), as TRL's reward_std; 0 for a single value."""
    kept = [v for v in values if not math.isnan(v)]
    if len(kept) < 2:
        return 0.0
    mean = math.fsum(kept) / len(kept)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in kept) / (len(kept) - 1))


@dataclass
class Samples:
    """Completions shown per logging step: the latest generation batch's first ``keep`` rows, written to
    ``path`` (one JSON line each) when the loop reports; None: not written (no run directory)."""

    path: Path | None
    keep: int = 4
    latest: list[dict[str, object]] = field(default_factory=list)

    def offer(self, step: int, rows: list[dict[str, object]]) -> None:
        self.latest = [{"step": step, **row} for row in rows[: self.keep]]

    def flush(self) -> None:
        if self.path is None or not self.latest:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            for row in self.latest:
                handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self.latest = []
