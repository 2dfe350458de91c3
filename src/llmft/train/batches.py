"""Where the loop's batches come from: a ``BatchSource`` it asks for each optimizer step's batches.

The loop knows only this interface: how many steps the run makes, how many windows (optimizer steps) an
epoch has, and the batches of window ``index`` of ``epoch`` — this process's share of them. Fixed data
(``FixedBatches``: tokenised rows, sampler, length grouping, packing, mixtures, per-rank shares) is one
source; its position is a function of (seed, epoch, window), which the loop state already holds, so it has
no state of its own. A generated source (rollouts for reinforcement learning: prompts answered by the model
being trained) computes its batches when asked and keeps what it needs to do that again exactly (a sampling
stream) in ``state_dict``, which every checkpoint carries (rank 0's; a source whose processes draw apart
derives each one's stream from that state and the rank).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from llmft.config.schema import TrainingConfig
from llmft.data.collate import batch_order, example_length
from llmft.train.distributed.group import Distribution

Batch = dict[str, torch.Tensor]


@dataclass
class Window:
    """One optimizer step's batches: this process's share (``mine``), the window's size in micro-batches
    over all processes, and a ``filler`` batch for the zero-weighted passes a process with fewer batches
    makes under FSDP/ZeRO (every process must make the same passes)."""

    mine: list[Batch]
    size: int
    filler: Callable[[], Batch]


class BatchSource(Protocol):
    """What the training loop asks for its batches (see the module's docstring)."""

    def total_steps(self) -> int:
        """The optimizer steps the run makes (max_steps, or the epochs' windows)."""
        ...

    def window_count(self, epoch: int) -> int:
        """How many windows (optimizer steps) ``epoch`` has."""
        ...

    def window(self, epoch: int, index: int) -> Window:
        """The batches of step ``index`` of ``epoch`` for this process."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must hold for the source to continue exactly (empty: nothing)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's ``state_dict``."""
        ...


def steps_per_epoch(num_examples: int, cfg: TrainingConfig, world_size: int = 1) -> int:
    batches = math.ceil(num_examples / cfg.batch_size)
    return max(1, math.ceil(batches / (cfg.gradient_accumulation_steps * world_size)))


def total_steps(num_examples: int, cfg: TrainingConfig, world_size: int = 1, updates: int = 1) -> int:
    """max_steps, else the epochs' optimizer steps; ``updates``: steps per window (a generated batch that
    serves several updates: online RL's num_iterations)."""
    if cfg.max_steps is not None:
        return cfg.max_steps
    return max(1, math.ceil(cfg.num_epochs * steps_per_epoch(num_examples, cfg, world_size) * updates))


@dataclass
class FixedBatches:
    """Batches of tokenised rows: the order a function of (seed, epoch), so a resumed run continues with
    exactly the batches it had not trained on; ``epoch_rows`` draws each epoch's rows from a weighted mix
    of data sets (None: every row)."""

    examples: list[dict[str, object]]
    collate: Callable[[list[dict[str, object]]], Batch]
    cfg: TrainingConfig
    seed: int
    group_by_length: bool
    dist: Distribution = field(default_factory=Distribution)
    epoch_rows: Callable[[int], list[int]] | None = None
    lengths: list[int] = field(default_factory=list)
    _cached: tuple[int, list[list[list[int]]]] | None = None

    def windows(self, epoch: int) -> list[list[list[int]]]:
        """This epoch's batches (row indices), grouped into accumulation windows (one optimizer step each,
        of all processes together: each trains on its share of a window)."""
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        if not self.lengths:
            self.lengths = [example_length(e) for e in self.examples]
        rows = self.epoch_rows(epoch) if self.epoch_rows else None
        batches = batch_order(
            self.lengths, self.cfg.batch_size, self.seed, epoch, self.group_by_length, rows=rows
        )
        k = self.cfg.gradient_accumulation_steps * self.dist.world_size
        self._cached = (epoch, [batches[i : i + k] for i in range(0, len(batches), k)])
        return self._cached[1]

    def total_steps(self) -> int:
        return total_steps(len(self.examples), self.cfg, self.dist.world_size)

    def window_count(self, epoch: int) -> int:
        return len(self.windows(epoch))

    def window(self, epoch: int, index: int) -> Window:
        rows = self.windows(epoch)[index]
        mine = [self._collate(idx) for idx in self.dist.share(rows)]
        return Window(mine, len(rows), lambda: self._collate(rows[0]))

    def _collate(self, indices: list[int]) -> Batch:
        return self.collate([self.examples[i] for i in indices])

    def state_dict(self) -> dict[str, Any]:
        return {}  # the position is the loop state's (epoch, window)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore (see ``state_dict``)."""
