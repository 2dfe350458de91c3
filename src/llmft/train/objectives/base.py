"""What every objective module provides, and the ``Objective`` the loop trains with.

An objective is a loss function and its unit count: each returns its loss as a SUM over the batch with the
number of loss units (tokens, rows or pairs), so gradient accumulation weighs every unit the same. A module
per objective (this package) says which data it takes, how its rows are encoded and batched, and builds
its ``Objective`` (loss and metrics) for a run; registry.py maps the names of the table in
config/objectives.py to the modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import torch

from llmft.data.labels import IGNORE

if TYPE_CHECKING:
    from llmft.config.schema import DataConfig, PreferenceConfig, TokenizationConfig
    from llmft.data.build import EncodedData, PreparedData
    from llmft.train.sections import TrainSections

Batch = dict[str, torch.Tensor]
LossFn = Callable[[torch.nn.Module, Batch], tuple[torch.Tensor, int]]
Collate = Callable[..., Batch]
# The policy and a batch → the reference model's summed completion log-probs of the batch's rows.
Reference = Callable[[torch.nn.Module, Batch], torch.Tensor]


def _no_metrics(mode: str) -> dict[str, float]:
    return {}


@dataclass(frozen=True)
class Objective:
    """``loss(model, batch) -> (summed loss, units)``; ``units(batch)`` counts the loss units before the
    forward pass (the loop divides by the whole accumulation window's count).

    ``report(mode)``: the objective's own metrics (mode `train` or `eval`) averaged since the last call,
    added to logging steps and evaluations (preference rewards/*). ``eval_task``: how evaluation reads the
    loss when not as the data's task (`preference`: the objective's loss per pair, no perplexity).
    """

    name: str
    loss: LossFn
    units: Callable[[Batch], int]
    report: Callable[[str], dict[str, float]] = _no_metrics
    eval_task: str | None = None


@dataclass
class Context:
    """What a module builds its objective from: the run's config sections, the placed model, the tokenizer,
    the encoded data and its collate. ``reference``: the reference model's log-probs, set (before ``build``)
    for modules that need one unless every batch carries them; ``notes``: lines for the user;
    ``shared``: what a module's ``build`` leaves for its ``batch_source`` (online RL: the metrics both add
    to)."""

    sections: TrainSections
    model: torch.nn.Module
    tokenizer: object
    encoded: EncodedData
    collate: Collate
    notes: list[str] = field(default_factory=list)
    reference: Reference | None = None
    shared: object | None = None


class ObjectiveModule(Protocol):
    """One objective: ``NAME`` and ``DATA`` (the data kinds it trains on) as in config/objectives.py,
    ``NEEDS_REFERENCE`` (a reference model's log-probs), and how a run encodes, batches and trains it.

    A module whose batches are made during training (rollouts: the fixed rows as prompts, answered by the
    model) also defines ``batch_source(context, fixed) -> BatchSource`` (train/batches.py); the loop then
    asks that source for its batches and checkpoints its state.

    A preference module (data/pair_collate.py's collators) is packed by ``data.packing`` when its model
    can keep packed documents apart: ``can_pack(model) -> bool`` when that test is not
    train/loss.py's ``supports_selective_head`` (reward: a split backbone and score head)."""

    NAME: str
    DATA: tuple[str, ...]
    NEEDS_REFERENCE: bool

    def encode(
        self,
        prepared: PreparedData,
        data: DataConfig,
        preference: PreferenceConfig,
        tokenizer: object,
        task: str,
    ) -> EncodedData:
        """The rows tokenized for this objective (every split), as the data section and (pairs, judged
        rows) training.preference say."""
        ...

    def collate(self, tokenization: TokenizationConfig, tokenizer: object, task: str) -> Collate:
        """How encoded rows are padded into batches (training and evaluation)."""
        ...

    def build(self, ctx: Context) -> Objective:
        """The loss and metrics for this run."""
        ...


def pad_id(tokenizer: object) -> int:
    """The tokenizer's padding id, else its end-of-sequence id, else 0."""
    found = getattr(tokenizer, "pad_token_id", None)
    return int(found if found is not None else getattr(tokenizer, "eos_token_id", 0) or 0)


def next_token_units(batch: Batch) -> int:
    """Causal LM: positions whose next token carries a label."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def label_units(batch: Batch) -> int:
    """seq2seq: every labelled target position."""
    return int((batch["labels"] != IGNORE).sum())


def row_units(batch: Batch) -> int:
    """Classification: one unit per row."""
    return int(batch["labels"].numel())
