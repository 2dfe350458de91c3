"""Several data sets in one run: which rows each epoch trains on.

``concat``: every row of every set once per epoch. ``weighted`` / ``temperature``: an epoch has as many rows
as all sets together, split between the sets by probability (``weight``, or size^(1/T)); each set's rows
are taken from an endless stream of its own shuffles, so no row repeats before its set is used up, and
the stream position of epoch ``e`` is ``e × quota``. Everything is a function of (seed, epoch): a resumed
run trains on exactly the rows the interrupted one would have, and the seen rows follow the ratio exactly
up to rounding.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Mixture:
    """Where each set's rows sit in the combined training list, and each set's share of an epoch."""

    names: tuple[str, ...]
    offsets: tuple[int, ...]  # index of each set's first row in the combined list
    sizes: tuple[int, ...]
    shares: tuple[float, ...]  # probabilities, summing to 1 (concat: proportional to size)
    mode: str = "concat"

    def quotas(self) -> list[int]:
        """Rows of each set per epoch: share × total, rounded (largest remainder) to sum to the total."""
        total = sum(self.sizes)
        if self.mode == "concat":
            return list(self.sizes)
        raw = [share * total for share in self.shares]
        quotas = [int(x) for x in raw]
        by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - quotas[i], reverse=True)
        for i in by_remainder[: total - sum(quotas)]:
            quotas[i] += 1
        return quotas

    def epoch_rows(self, seed: int, epoch: int) -> list[int]:
        """Indices (into the combined list) of the rows epoch ``epoch`` trains on, in set order."""
        if self.mode == "concat":
            return list(range(sum(self.sizes)))
        rows: list[int] = []
        for k, quota in enumerate(self.quotas()):
            start = epoch * quota
            rows.extend(self.offsets[k] + i for i in _stream(seed, k, self.sizes[k], start, quota))
        return rows


def _stream(seed: int, set_index: int, size: int, start: int, count: int) -> list[int]:
    """Positions ``start .. start+count`` of a set's endless stream of shuffles (a new shuffle per pass)."""
    out: list[int] = []
    position = start
    while len(out) < count and size:
        cycle, offset = divmod(position, size)
        order = list(range(size))
        random.Random(f"{seed}:{set_index}:{cycle}").shuffle(order)
        take = order[offset : offset + count - len(out)]
        out.extend(take)
        position += len(take)
    return out


def build_mixture(
    names: Sequence[str], sizes: Sequence[int], mode: str, weights: Sequence[float], temperature: float
) -> Mixture:
    """The mixture of sets with ``sizes`` training rows (in the combined list's order)."""
    if mode == "weighted":
        raw = list(weights)
    elif mode == "temperature":
        raw = [size ** (1.0 / temperature) for size in sizes]
    else:
        raw = [float(size) for size in sizes]
    total = sum(raw) or 1.0
    offsets = [sum(sizes[:k]) for k in range(len(sizes))]
    return Mixture(tuple(names), tuple(offsets), tuple(sizes), tuple(x / total for x in raw), mode)
