"""`llmft train` on a grpo config whose reward cannot be found, as a user runs it: the run stops with exit
code 2 before it makes its run directory, naming the reward entry with a fix; never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.integration.cli_process import HANG_GUARD_S

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_llmft_train_refuses_a_missing_reward_file_before_the_run_directory(
    tiny_model, synth_data, tmp_path: Path
) -> None:  # noqa: ANN001
    files = synth_data("sft", rows=16)
    config = {
        "output_dir": str(tmp_path / "run"),
        "data": {"dataset": {"train_file": str(files["train"])}},
        "model": {"name_or_path": str(tiny_model("llama"))},
        "training": {
            "objective": "grpo",
            "max_steps": 2,
            "rl": {"rewards": [{"function": "my_rewards.py:correct"}], "num_generations": 4},
        },
    }
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {"PYTHONPATH": str(REPO_ROOT / "src"), "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "llmft.cli.main", "train", str(path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "training.rl.rewards[0].function" in done.stderr
    assert f"reward file `{tmp_path / 'my_rewards.py'}` not found" in done.stderr  # relative to the config
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()  # refused before the run directory is made
