"""A batch source that computes its batches on the fly plugs into the loop without touching it, and a run
SIGKILLed mid-training resumes it exactly: the source's stream travels in the checkpoint
(tests/integration/generated_source.py is the run; a real one would be rollouts for reinforcement learning).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from tests.integration.cli_process import HANG_GUARD_S, CliProcess
from tests.matrix import THREADS, thread_env

from llmft.train.signals import HOLD_AT_STEP, HOLD_LINE

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

REPO = Path(__file__).resolve().parents[2]
MAX_STEPS, SAVE_STEPS, HOLD = 8, 3, 4
TIMEOUT = HANG_GUARD_S  # a guard only: each run takes seconds on a quiet machine


class GeneratedRun(CliProcess):
    """``python -m tests.integration.generated_source CONFIG [--resume]`` instead of `llmft train`."""

    def __init__(self, config: Path, log: Path, *extra: str, env: dict[str, str]) -> None:
        super().__init__(config, log, *extra, env=env, cwd=REPO, timeout=TIMEOUT)

    def command(self, config: Path, extra: tuple[str, ...]) -> list[str]:
        return [sys.executable, "-m", "tests.integration.generated_source", str(config), *extra]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}", **thread_env()}
    env.pop(HOLD_AT_STEP, None)
    return {**env, **extra}


def _config(folder: Path, model: Path, train_file: Path) -> Path:
    folder.mkdir(parents=True)
    config = {
        "output_dir": str(folder / "run"),
        "data": {"dataset": {"train_file": str(train_file)}, "tokenization": {"max_length": 32}},
        "model": {"name_or_path": str(model), "adapter": {"type": "lora", "r": 4}},
        "training": {
            "max_steps": MAX_STEPS,
            "batch_size": 2,
            "gradient_accumulation_steps": 2,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "eval_strategy": "no",
            "save_steps": SAVE_STEPS,
            "num_threads": THREADS,
        },
        "evaluation": {"on_test": False},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _losses(run_dir: Path) -> list[tuple[int, float]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [(r["step"], r["loss"]) for r in map(json.loads, lines) if "loss" in r]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_model, synth_data) -> dict[str, object]:  # noqa: ANN001
    model, train_file = tiny_model("llama"), synth_data("sft", rows=16)["train"]
    root = tmp_path_factory.mktemp("batch-source")
    whole = _config(root / "whole", model, train_file)
    killed = _config(root / "killed", model, train_file)
    done = GeneratedRun(whole, root / "whole.log", env=_env()).finish()
    first = GeneratedRun(killed, root / "killed.log", env=_env(**{HOLD_AT_STEP: str(HOLD)}))
    held = first.wait_for(lambda: first.said(HOLD_LINE.format(step=HOLD)))
    first.proc.send_signal(signal.SIGKILL)
    stopped = first.finish()
    resumed = GeneratedRun(killed, root / "resumed.log", "--resume", env=_env()).finish()
    return {"whole": whole.parent / "run", "killed": killed.parent / "run", "done": done, "held": held,
            "stopped": stopped, "resumed": resumed}  # fmt: skip


def test_the_loop_trains_on_a_source_that_computes_its_batches(runs: dict) -> None:  # noqa: ANN001
    rc, output = runs["done"]
    assert rc == 0, output
    assert "objective: generated" in output, output
    steps = [s for s, _ in _losses(runs["whole"])]
    assert steps == list(range(1, MAX_STEPS + 1))
    saved = torch.load(runs["whole"] / "checkpoints" / "step-0000006" / "batch_source.pt", weights_only=True)
    assert saved["served"] == 6  # the source's own state, one window per step


def test_a_sigkilled_run_resumes_the_generated_batches_exactly(runs: dict) -> None:  # noqa: ANN001
    assert runs["held"], runs["stopped"][1]
    assert runs["stopped"][0] == -signal.SIGKILL, runs["stopped"][1]
    rc, output = runs["resumed"]
    assert rc == 0, output
    assert "step-0000003 at step 3" in output, output  # step 4 was lost with the kill and made again
    # A replay on the same machine: the same arithmetic in the same order, so to the bit
    # (tests/tolerances.py); without the stream's state the rows after step 3 would differ.
    assert _losses(runs["killed"]) == _losses(runs["whole"])
    mine = load_file(str(runs["killed"] / "model" / "adapter_model.safetensors"))
    theirs = load_file(str(runs["whole"] / "model" / "adapter_model.safetensors"))
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in theirs)
