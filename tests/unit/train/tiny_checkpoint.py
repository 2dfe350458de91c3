"""A real checkpoint of a 2×2 linear model, for the tests of writing, pruning and verifying checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch

from llmft.train import checkpoint as ckpt
from llmft.train.loop import LoopState


def write(out: Path, step: int, keep: int | None = None, rank_rngs: list[bytes] | None = None) -> Path:
    """Checkpoint ``step`` into the run ``out`` (keeping ``keep``; ``rank_rngs``: other processes' states)."""
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return ckpt.save_checkpoint(
        out,
        model=model,
        optimizer=opt,
        scheduler=sched,
        state=LoopState(step=step),
        config_yaml="seed: 0\n",
        keep=keep,
        rank_rngs=rank_rngs,
    )
