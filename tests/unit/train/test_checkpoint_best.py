"""save_total_limit keeps the newest checkpoints, and the best one (save_best_metric) is protected from
pruning. How the loop picks the best is tested with the loop (test_loop.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.train.tiny_checkpoint import write

from llmft.train import checkpoint as ckpt


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
