"""training.objective grpo/rloo and training.rl: the settings validate like every section (each problem at
its path, with a fix), their defaults are TRL 1.16's (read from TRL's own config classes), `llmft validate`
accepts an RL config with a warning, and a run refuses it before loading anything: no loop trains online RL
yet, and a run must never silently train something else."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from llmft.config.load import validate_dict
from llmft.config.schema import OBJECTIVE_DEFAULTS, RunConfig
from llmft.errors import ConfigError
from llmft.train.objectives.choose import choose_objective

MINIMAL = {"data": {"dataset": {"train_file": "train.jsonl"}}, "model": {"name_or_path": "gpt2"}}
REWARDS = [{"function": "my_rewards.py:correct", "weight": 1.0, "args": {"strict": True}}]


def problems(training: dict) -> list[str]:
    data = copy.deepcopy(MINIMAL)
    data["training"] = training
    _, found = validate_dict(data)
    return [f"{p.severity}: {p.render()}" for p in found]


@pytest.mark.parametrize("objective", ["grpo", "rloo"])
def test_an_rl_config_validates_without_a_word(objective: str) -> None:
    found = problems({"objective": objective, "rl": {"rewards": REWARDS, "mask_truncated_completions": True}})
    assert found == []


def test_every_grpo_setting_is_accepted() -> None:
    rl = {
        "rewards": [*REWARDS, {"function": "pkg.mod:brevity", "weight": -0.5}, {"function": "format_tags"}],
        "num_generations": 4,
        "max_completion_length": 256,
        "temperature": 0.9,
        "top_p": 0.95,
        "top_k": 50,
        "beta": 0.04,
        "epsilon": 0.2,
        "epsilon_high": 0.28,
        "num_iterations": 2,
        "loss_type": "dr_grpo",
        "importance_sampling_level": "sequence",
        "scale_rewards": "batch",
    }
    assert [p for p in problems({"objective": "grpo", "rl": rl}) if p.startswith("error")] == []


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        ({"objective": "grpo"}, "training.rl.rewards: objective grpo learns from rewards of its own "),
        ({"objective": "rloo", "rl": {"rewards": []}}, "training.rl.rewards is empty"),
        (
            {"objective": "dpo", "rl": {"rewards": REWARDS}},
            "training.rl: training.rl is read only by the online RL objectives (grpo, rloo), and "
            "training.objective is dpo Fix: set training.objective: grpo (or rloo), or delete training.rl",
        ),
        ({"rl": {"rewards": REWARDS}}, "training.objective is auto"),
        (
            {"objective": "grpo", "rl": {"rewards": REWARDS, "epsilon": 0.3, "epsilon_high": 0.2}},
            "training.rl.epsilon_high: epsilon_high (0.2) is below epsilon (0.3)",
        ),
        (
            {"objective": "grpo", "rl": {"rewards": REWARDS, "num_generations": 1}},
            "training.rl.num_generations: expected a number >= 2, got 1",
        ),
        ({"objective": "grpo", "rl": {"rewards": REWARDS, "beta": -0.1}}, "training.rl.beta: "),
        (
            {
                "objective": "grpo",
                "rl": {"rewards": REWARDS, "loss_type": "dr_grpo", "max_completion_length": None},
            },
            "training.rl.loss_type: loss_type dr_grpo divides by max_completion_length, and it is null",
        ),
        (
            {"objective": "grpo", "rl": {"rewards": [{"function": "f", "weight": float("nan")}]}},
            "training.rl.rewards.0.weight: expected a finite number",
        ),
        (
            {"objective": "grpo", "rl": {"rewards": [{"function": "file.py:"}]}},
            "training.rl.rewards.0.function: reward function 'file.py:' names no function",
        ),
        ({"objective": "grpo", "rl": {"rewards": [{"function": ""}]}}, "training.rl.rewards.0.function: "),
        ({"objective": "grpo", "rl": {"rewards": [{"weight": 1.0}]}}, "training.rl.rewards.0.function: "),
        (
            {"objective": "rloo", "rl": {"rewards": REWARDS, "loss_type": "dapo"}},
            "training.rl.loss_type: loss_type is read by grpo only",
        ),
        (
            {"objective": "rloo", "rl": {"rewards": REWARDS, "importance_sampling_level": "sequence"}},
            "training.rl.importance_sampling_level: importance_sampling_level is read by grpo only",
        ),
        (
            {"objective": "rloo", "rl": {"rewards": REWARDS, "scale_rewards": "group"}},
            "training.rl.scale_rewards: scale_rewards `group` is grpo's",
        ),
        (
            {"objective": "grpo", "rl": {"rewards": REWARDS}, "preference": {"beta": 0.1}},
            "training.preference.beta is not read by objective `grpo`",
        ),
    ],
)
def test_impossible_rl_settings_are_refused_at_their_path(training: dict, expected: str) -> None:
    found = problems(training)
    assert any(p.startswith("error: ") and expected in p for p in found), found


def _trl_defaults(config_class: type) -> dict[str, object]:
    return {f.name: f.default for f in dataclasses.fields(config_class)}


def test_defaults_are_trls() -> None:
    """Read from TRL 1.16's GRPOConfig and RLOOConfig; where llmft names a setting otherwise, it says how."""
    trl = pytest.importorskip("trl", reason="TRL is the reference implementation (test extra)")
    rl = RunConfig.model_validate(
        {**MINIMAL, "training": {"objective": "grpo", "rl": {"rewards": REWARDS}}}
    ).training.rl
    assert rl is not None
    grpo, rloo = _trl_defaults(trl.GRPOConfig), _trl_defaults(trl.RLOOConfig)
    for name, value in rl.resolved("grpo").items():
        want = grpo[name] if name != "epsilon_high" else None  # TRL: None also means epsilon
        assert value == want, name
    ours = rl.resolved("rloo")
    assert ours.pop("scale_rewards") == ("batch" if rloo["normalize_advantages"] else "none")
    assert ours.pop("loss_type") is None and ours.pop("importance_sampling_level") is None  # not RLOO's
    for name, value in ours.items():
        assert value == rloo[name], name
    assert set(OBJECTIVE_DEFAULTS) == {"grpo", "rloo"}


@pytest.mark.parametrize("objective", ["grpo", "rloo"])
@pytest.mark.parametrize("data_format", ["prompt", "alpaca", "messages"])
def test_a_run_trains_online_rl_on_prompts_and_instruction_rows(objective: str, data_format: str) -> None:
    config = RunConfig.model_validate(
        {**MINIMAL, "training": {"objective": objective, "rl": {"rewards": REWARDS}}}
    )
    assert choose_objective(config.training, data_format) == (objective, "set by training.objective")


def test_auto_picks_grpo_for_prompt_only_rows_and_sft_refuses_them() -> None:
    config = RunConfig.model_validate(MINIMAL)
    assert choose_objective(config.training, "prompt") == (
        "grpo",
        "prompt-only rows and no training.objective",
    )
    sft = RunConfig.model_validate({**MINIMAL, "training": {"objective": "sft"}})
    with pytest.raises(ConfigError, match="sft on prompt-only rows has no answers to learn from") as err:
        choose_objective(sft.training, "prompt")
    assert err.value.fix == "set training.objective: grpo (or auto)"


@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed"])
def test_online_rl_is_refused_under_a_sharded_strategy_with_the_reason(strategy: str) -> None:
    distributed = {
        "strategy": strategy,
        **({"deepspeed": {"zero_optimization": {"stage": 2}}} if strategy == "deepspeed" else {}),
    }
    training = {"objective": "grpo", "rl": {"rewards": REWARDS}, "distributed": distributed}
    found = [p for p in problems(training) if p.startswith("error: training.rl:")]
    assert len(found) == 1, problems(training)
    assert "samples its completions with the whole policy, which sharding splits" in found[0]
    assert f"`training.distributed.strategy: {strategy}`" in found[0]
