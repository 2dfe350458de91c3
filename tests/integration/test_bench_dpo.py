"""`llmft bench --suite dpo-ci`: llmft's DPO and TRL's DPOTrainer train on the same batches of the same
pairs (llmft's packed, TRL's padded), so their per-step losses agree; both are measured completely (the
figures themselves are not meaningful on a tiny model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.cli_process import HANG_GUARD_S

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

REPO = Path(__file__).resolve().parents[2]


def test_dpo_bench_runs_both_contenders_on_the_same_batches(tmp_path: Path, shared_data_dir: Path) -> None:
    pytest.importorskip("trl", reason="the DPO bench compares with TRL's DPOTrainer")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [
        "bench",
        "--suite",
        "dpo-ci",
        "--out",
        str(tmp_path),
        "--no-cli-timing",
        "--peak-seconds",
        "0.5",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "llmft.cli.main", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (scenario,) = json.loads((tmp_path / "bench.json").read_text())["scenarios"]
    runs = {r["contender"]: r for r in scenario["runs"]}
    assert set(runs) == {"llmft", "trl-dpo"} and all("error" not in r for r in runs.values())
    ours, theirs = runs["llmft"]["step_losses"], runs["trl-dpo"]["step_losses"]
    assert len(ours) == len(theirs) >= 3
    # Step 1 is the same forward (≤ 1e-5 apart, test_preference_vs_trl). The steps after it follow AdamW
    # (lr 2e-4) on gradients summed in other orders: Adam can move a weight whose gradient is ~0 up to
    # 2·lr·steps ≈ 1.2e-3 apart, but the loss depends on such a weight only at second order
    # ((1.2e-3)² ≈ 1.4e-6 per weight, times its curvature), so 1e-4 on a loss near log 2 holds on any CPU.
    assert ours == pytest.approx(theirs, abs=1e-4), "same batches, same losses at every step"
    assert runs["llmft"]["real_tokens"] == runs["trl-dpo"]["real_tokens"]
    # llmft packs each batch's sequences into one row: padding is what rounds the row up to a multiple of 8
    # (≤ 7 of the batch's hundreds of tokens); TRL pads every sequence to the batch's longest.
    assert runs["llmft"]["pad_fraction"] <= 0.05 < runs["trl-dpo"]["pad_fraction"]
    assert scenario["llmft_ratio_to"]["trl-dpo"]["tokens_per_second"] > 0
