"""The `reward_model` built-in on tiny reward runs (full model, and a LoRA adapter with its head): it scores
a prompt + completion as the run's own evaluation did, so on the run's validation pairs it reproduces the
run's eval_mean_reward and eval_accuracy; batching does not change a score; the check is torch-free."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.matrix import THREADS

from llmft.config.load import load_config
from llmft.pipeline import run
from llmft.rewards import RewardSpec, build_rewards, check_reward_refs, score
from llmft.rewards.reward_model import RewardModel

pytestmark = pytest.mark.slow  # each run trains a tiny reward model (a few seconds)

# eval_mean_reward averages float32 head outputs over ≤ 40 pairs, computed in other batches (other padding,
# another summation order): each score moves by ≲ FORWARD_REL of the scores' scale (tests/tolerances.py).
REL = 1e-4


@pytest.fixture(scope="module", params=["none", "lora"])
def reward_run(request: pytest.FixtureRequest, tiny_model, synth_data, tmp_path_factory) -> Path:  # noqa: ANN001
    files = synth_data("preference", rows=200)
    folder = tmp_path_factory.mktemp(f"reward-{request.param}")
    config = {
        "output_dir": str(folder / "run"),
        "data": {
            "dataset": {"train_file": str(files["train"]), "validation_file": str(files["validation"])},
            "tokenization": {"max_length": 64},
        },
        "model": {"name_or_path": str(tiny_model("llama")), "adapter": {"type": request.param}},
        "training": {
            "objective": "reward",
            "num_threads": THREADS,
            "batch_size": 16,
            "learning_rate": 1e-3,
            "max_steps": 12,
            "save_strategy": "no",
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    run(load_config(path, []), say=lambda _: None, progress=False)
    return folder / "run"


def _validation_pairs(synth_data) -> list[dict[str, str]]:  # noqa: ANN001
    path = synth_data("preference", rows=200)["validation"]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_scores_reproduce_the_runs_own_evaluation(reward_run: Path, synth_data) -> None:  # noqa: ANN001
    pairs = _validation_pairs(synth_data)
    results = json.loads((reward_run / "eval_results.json").read_text())
    assert results["eval_pairs"] == len(pairs)
    reward = RewardModel(str(reward_run), device="cpu")
    prompts = [p["prompt"] for p in pairs]
    chosen = reward(prompts=prompts, completions=[p["chosen"] for p in pairs])
    rejected = reward(prompts=prompts, completions=[p["rejected"] for p in pairs])
    mean = sum(c + r for c, r in zip(chosen, rejected)) / 2 / len(pairs)
    scale = max(abs(s) for s in chosen + rejected)
    assert abs(mean - results["eval_mean_reward"]) <= REL * scale, (mean, results)
    accuracy = sum(c > r for c, r in zip(chosen, rejected)) / len(pairs)
    assert accuracy == results["eval_accuracy"]
    assert len(set(chosen)) > 1  # the head tells completions apart


def test_conversational_prompts_and_completions_score_as_strings(reward_run: Path, synth_data) -> None:  # noqa: ANN001
    pairs = _validation_pairs(synth_data)[:5]
    reward = RewardModel(str(reward_run), batch_size=2, device="cpu")
    plain = reward(prompts=[p["prompt"] for p in pairs], completions=[p["chosen"] for p in pairs])
    chat = reward(
        prompts=[[{"role": "user", "content": p["prompt"]}] for p in pairs],
        completions=[[{"role": "assistant", "content": p["chosen"]}] for p in pairs],
    )
    one_by_one = [reward(prompts=[p["prompt"]], completions=[p["chosen"]])[0] for p in pairs]
    scale = max(abs(s) for s in plain)
    assert max(abs(a - b) for a, b in zip(plain, chat)) == 0.0  # the same tokens
    assert max(abs(a - b) for a, b in zip(plain, one_by_one)) <= REL * scale  # other padding only


def test_a_config_names_the_run_relative_to_its_folder(reward_run: Path, synth_data) -> None:  # noqa: ANN001
    entries = [RewardSpec("reward_model", 0.5, {"run": reward_run.name, "device": "cpu"})]
    assert check_reward_refs(entries, reward_run.parent) == []
    built = build_rewards(entries, reward_run.parent)
    pairs = _validation_pairs(synth_data)[:3]
    per_function, total = score(
        built, [p["prompt"] for p in pairs], [p["chosen"] for p in pairs], [[1]] * 3, {"rejected": ["x"] * 3}
    )
    assert total == pytest.approx([0.5 * s for s in per_function[0]], rel=1e-15)


def test_a_run_of_another_objective_is_refused_before_loading(reward_run: Path, tmp_path: Path) -> None:
    record = json.loads((reward_run / "run.json").read_text())
    other = tmp_path / "sft-run"
    (other / "model").mkdir(parents=True)
    (other / "run.json").write_text(json.dumps({**record, "objective": "sft"}))
    [problem] = check_reward_refs([RewardSpec("reward_model", args={"run": "sft-run"})], tmp_path)
    assert problem.path == "training.rl.rewards[0].args.run"
    assert problem.message == f"`{other}` was trained with objective `sft`, not `reward`"
    assert problem.fix == "name the output_dir of a finished run trained with `training.objective: reward`"
    [missing] = check_reward_refs([RewardSpec("reward_model", args={"run": "gone"})], tmp_path)
    assert missing.message == f"`{tmp_path / 'gone'}` does not exist"
