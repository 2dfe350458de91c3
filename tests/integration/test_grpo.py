"""`llmft train` with `training.objective: grpo`, as a user runs it, on a tiny llama with a LoRA adapter:
prompt-only rows, a built-in reward, completions sampled in the loop. The run writes the reward metrics
and rollouts.jsonl; SIGKILLed mid-run and resumed it makes the same steps as an uninterrupted run (the
sampling stream and the generation batch in use travel in the checkpoint); and on a reward a tiny model
can raise, the reward rises.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml
from tests.integration.cli_process import HANG_GUARD_S, CliProcess
from tests.matrix import THREADS, thread_env

from llmft.train.signals import HOLD_AT_STEP, HOLD_LINE

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
MAX_STEPS, SAVE_STEPS, HOLD = 6, 3, 4  # num_iterations 2: the checkpoint at step 3 is mid-generation
LOW_IDS = '''
def low_ids(completions, completion_ids, **kwargs):
    """The share of completion tokens with an id below 500: a taste a tiny model learns in a few steps."""
    return [sum(t < 500 for t in ids) / max(1, len(ids)) for ids in completion_ids]
'''


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}", **thread_env()}
    env.pop(HOLD_AT_STEP, None)
    return {**env, **extra}


def _prompts(folder: Path) -> Path:
    path = folder / "prompts.jsonl"
    rows = [{"prompt": f"count to {i}", "answer": str(i)} for i in range(16)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _config(folder: Path, model: Path, prompts: Path, training: dict, rl: dict) -> Path:
    folder.mkdir(parents=True)
    config = {
        "output_dir": str(folder / "run"),
        "data": {"dataset": {"train_file": str(prompts)}, "tokenization": {"max_length": 64}},
        "model": {"name_or_path": str(model), "adapter": {"type": "lora", "r": 4}},
        "training": {
            "objective": "grpo",
            "batch_size": 2,
            "logging_steps": 1,
            "eval_strategy": "no",
            "num_threads": THREADS,
            **training,
            "rl": {"max_completion_length": 6, **rl},
        },
        "evaluation": {"on_test": False},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if "loss" in r]


def _run(config: Path, log: Path, *extra: str, **env: str) -> CliProcess:
    return CliProcess(config, log, *extra, env=_env(**env), cwd=REPO, timeout=HANG_GUARD_S)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_model) -> dict[str, object]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("grpo")
    model, prompts = tiny_model("llama"), _prompts(root)
    training = {"max_steps": MAX_STEPS, "gradient_accumulation_steps": 2, "save_steps": SAVE_STEPS}
    rl = {
        "num_generations": 4,
        "num_iterations": 2,
        "beta": 0.05,
        "rewards": [
            {"function": "length", "args": {"target": 3}},
            {"function": "answer_match", "weight": 0.5},
        ],
    }
    whole = _config(root / "whole", model, prompts, training, rl)
    killed = _config(root / "killed", model, prompts, training, rl)
    done = _run(whole, root / "whole.log").finish()
    first = _run(killed, root / "killed.log", **{HOLD_AT_STEP: str(HOLD)})
    held = first.wait_for(lambda: first.said(HOLD_LINE.format(step=HOLD)))
    first.proc.send_signal(signal.SIGKILL)
    stopped = first.finish()
    resumed = _run(killed, root / "resumed.log", "--resume").finish()
    return {
        "whole": whole.parent / "run",
        "killed": killed.parent / "run",
        "done": done,
        "held": held,
        "stopped": stopped,
        "resumed": resumed,
        "root": root,
        "model": model,
        "prompts": prompts,
    }


def test_a_grpo_run_logs_rewards_and_samples_of_its_completions(runs: dict) -> None:  # noqa: ANN001
    rc, output = runs["done"]
    assert rc == 0, output
    assert "objective: grpo (set by training.objective)" in output
    records = _records(runs["whole"])
    assert [r["step"] for r in records] == list(range(1, MAX_STEPS + 1))
    keys = {
        "reward",
        "reward_std",
        "rewards/length/mean",
        "rewards/answer_match/mean",
        "kl",
        "entropy",
        "completions/mean_length",
        "completions/min_length",
        "completions/max_length",
        "completions/clipped_ratio",
        "clip_ratio/low_mean",
        "clip_ratio/high_mean",
        "clip_ratio/region_mean",
        "frac_reward_zero_std",
    }
    assert all(keys <= r.keys() for r in records), sorted(records[0])
    assert all(-1.0 <= r["rewards/length/mean"] <= 0.0 and r["completions/max_length"] <= 6 for r in records)
    samples = [json.loads(line) for line in (runs["whole"] / "rollouts.jsonl").read_text().splitlines()]
    # each generation batch's sample once, at the step that sampled it (num_iterations 2: every other step)
    assert [s["step"] for s in samples] == [step for step in (1, 3, 5) for _ in range(4)]
    assert {"prompt", "completion", "reward", "rewards/length", "rewards/answer_match"} <= samples[0].keys()
    assert samples[0]["prompt"].startswith("count to ")


@pytest.mark.numeric
def test_a_sigkilled_grpo_run_resumes_the_same_rollouts(runs: dict) -> None:  # noqa: ANN001
    assert runs["held"], runs["stopped"][1]
    assert runs["stopped"][0] == -signal.SIGKILL, runs["stopped"][1]
    rc, output = runs["resumed"]
    assert rc == 0, output
    assert "step-0000003 at step 3" in output, output  # step 4 was lost with the kill and made again
    mine, theirs = _records(runs["killed"]), _records(runs["whole"])
    assert [r["step"] for r in mine] == [r["step"] for r in theirs]
    # The same arithmetic replayed in the same order on the same machine: equal to the bit in practice;
    # 1e-6 is the bound. Step 4 trains on the generation batch the checkpoint carried.
    for a, b in zip(mine, theirs, strict=True):
        for key in ("loss", "reward", "rewards/length/mean", "kl", "completions/mean_length"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (a["step"], key)

    # The samples too: what the killed run wrote after its checkpoint is dropped, then written again.
    def shown(run: Path) -> list[tuple[object, ...]]:
        lines = (run / "rollouts.jsonl").read_text(encoding="utf-8").splitlines()
        return [(s["step"], s["prompt"], s["completion"]) for s in map(json.loads, lines)]

    assert shown(runs["killed"]) == shown(runs["whole"])


def test_grpo_raises_a_reward_a_tiny_model_can_learn(runs: dict) -> None:  # noqa: ANN001
    root = runs["root"]
    training = {"max_steps": 12, "learning_rate": 2e-2, "save_strategy": "no"}
    rl = {"num_generations": 8, "max_completion_length": 8, "rewards": [{"function": "taste.py:low_ids"}]}
    config = _config(root / "learn" / "c", runs["model"], runs["prompts"], training, rl)
    data = yaml.safe_load(config.read_text())
    data["model"]["adapter"]["target_modules"] = "all-linear"  # the MLPs shift the output distribution fast
    config.write_text(yaml.safe_dump(data))
    (root / "learn" / "c" / "taste.py").write_text(LOW_IDS, encoding="utf-8")  # relative to the config
    rc, output = _run(config, root / "learn.log").finish()
    assert rc == 0, output
    rewards = [r["reward"] for r in _records(root / "learn" / "c" / "run")]
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    # About half the ids are below 500 at random (0.5 ± 0.06 over 128 tokens a step); learning lifts it.
    assert last > first + 0.1, rewards
