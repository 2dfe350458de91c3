"""What training minimises, chosen by the task: an objective is a loss function and its token count.

Each objective returns its loss as a SUM over the batch with the number of loss units (tokens, or rows
for classification), so gradient accumulation weighs every unit the same. New objectives (preference
losses, train/preference/) add a function and a row, never a second loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from llmft.data.labels import IGNORE
from llmft.train.loss import (
    classification_loss,
    full_lm_loss,
    selective_lm_loss,
    seq2seq_loss,
    supports_selective_head,
)

Batch = dict[str, torch.Tensor]
LossFn = Callable[[torch.nn.Module, Batch], tuple[torch.Tensor, int]]


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


def next_token_units(batch: Batch) -> int:
    """Causal LM: positions whose next token carries a label."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def label_units(batch: Batch) -> int:
    """seq2seq: every labelled target position."""
    return int((batch["labels"] != IGNORE).sum())


def row_units(batch: Batch) -> int:
    """Classification: one unit per row."""
    return int(batch["labels"].numel())


def objective_for(task: str, model: torch.nn.Module) -> Objective:
    """The objective of ``task``; for causal LM the fastest correct loss for ``model``."""
    if task == "sequence_classification":
        return Objective("classification", classification_loss, row_units)
    if task == "seq2seq_lm":
        return Objective("seq2seq", seq2seq_loss, label_units)
    loss = selective_lm_loss if supports_selective_head(model) else full_lm_loss
    return Objective("causal_lm", loss, next_token_units)
