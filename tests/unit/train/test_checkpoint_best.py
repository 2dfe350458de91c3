"""save_total_limit keeps the newest checkpoints, and the best one (save_best_metric) is protected from
pruning. How the loop picks the best is tested with the loop (test_loop.py)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from llmft.train import checkpoint as ckpt
from llmft.train.loop import LoopState


def write(out: Path, step: int, keep: int) -> Path:
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
    )


def test_keep_last_k_and_the_best(tmp_path: Path) -> None:
    first = write(tmp_path, 1, keep=2)
    ckpt.mark_best(tmp_path, first, "eval_loss", 0.5)
    for step in (2, 3, 4):
        write(tmp_path, step, keep=2)
    names = [p.name for p in ckpt.complete_checkpoints(tmp_path / "checkpoints")]
    assert names == ["step-0000001", "step-0000003", "step-0000004"]
    state = json.loads((tmp_path / "checkpoints" / "step-0000004" / "state.json").read_text())
    assert state["step"] == 4 and len(state["config_hash"]) == 16
    assert ckpt.latest_checkpoint(tmp_path).name == "step-0000004"
