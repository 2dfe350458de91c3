"""``score``: rewards called with TRL's convention (a TRL reward works unchanged), None as NaN, the weighted
nansum, TRL's warning for unscorable completions, and a failing reward named with its prompt."""

from __future__ import annotations

import logging
import math
import textwrap
from pathlib import Path

import pytest

from llmft.errors import TrainingError
from llmft.rewards import Reward, RewardSpec, build_rewards, score

# Written as TRL's GRPO docs write rewards, plus one that records what it was given.
USER_REWARDS = '''
import re

seen = {}


def reward_func(completions, ground_truth, **kwargs):
    matches = [re.search(r"\\\\boxed\\{(.*?)\\}", completion) for completion in completions]
    contents = [match.group(1) if match else "" for match in matches]
    return [1.0 if c == gt else 0.0 for c, gt in zip(contents, ground_truth)]


def length_reward(completion_ids, **kwargs):
    return [float(len(ids)) for ids in completion_ids]


def math_only(completions, task, **kwargs):
    """A multi-task reward: None where it does not apply."""
    return [1.0 if t == "math" else None for t in task]


def spy(prompts, completions, completion_ids, **kwargs):
    seen.update(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
    return [0.0] * len(prompts)


async def judge(prompts, completions, **kwargs):
    return [0.25] * len(completions)
'''

PROMPTS = ["What is 6 times 7?", "Name the capital of France.", "What is 2 + 5?"]
COMPLETIONS = ["6 * 7 = \\boxed{42}", "Paris", "\\boxed{8}"]
IDS = [[5, 6, 7, 8], [9], [10, 11]]
COLUMNS = {"prompt": PROMPTS, "ground_truth": ["42", "Paris", "7"], "task": ["math", "geo", "math"]}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "user_rewards.py").write_text(textwrap.dedent(USER_REWARDS), encoding="utf-8")
    return tmp_path


def rewards(folder: Path, *names: str, weights: tuple[float, ...] = ()) -> list[Reward]:
    weights = weights or (1.0,) * len(names)
    specs = [
        RewardSpec(n if ":" in n or n in ("length",) else f"user_rewards.py:{n}", w)
        for n, w in zip(names, weights)
    ]
    return build_rewards(specs, folder)


def test_trl_style_rewards_get_their_columns_and_are_weighted(folder: Path) -> None:
    built = rewards(folder, "reward_func", "length_reward", weights=(2.0, 0.5))
    assert [r.name for r in built] == ["reward_func", "length_reward"]
    per_function, total = score(built, PROMPTS, COMPLETIONS, IDS, COLUMNS)
    assert per_function == [[1.0, 0.0, 0.0], [4.0, 1.0, 2.0]]
    assert total == [2.0 * 1.0 + 0.5 * 4.0, 0.5 * 1.0, 0.5 * 2.0]


def test_every_column_but_prompt_arrives_by_keyword_with_the_extras(folder: Path) -> None:
    import sys

    [spy] = rewards(folder, "spy")
    state = object()
    score([spy], PROMPTS, COMPLETIONS, IDS, COLUMNS, extras={"trainer_state": state})
    seen = sys.modules[spy.func.__module__].seen
    assert set(seen) == {"prompts", "completions", "completion_ids", "ground_truth", "task", "trainer_state"}
    assert seen["prompts"] == PROMPTS and seen["completion_ids"] == IDS and seen["task"] == COLUMNS["task"]
    assert seen["trainer_state"] is state


def test_none_is_nan_and_left_out_of_the_sum(folder: Path) -> None:
    built = rewards(folder, "math_only", "reward_func")
    per_function, total = score(built, PROMPTS, COMPLETIONS, IDS, COLUMNS)
    assert per_function[0][0] == 1.0 and math.isnan(per_function[0][1]) and per_function[0][2] == 1.0
    assert total == [2.0, 0.0, 1.0]  # row 1: math_only does not apply, reward_func's 0.0 stands (not NaN)


def test_a_completion_no_reward_applies_to_has_a_nan_total_and_a_warning(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    [only] = rewards(folder, "math_only")
    with caplog.at_level(logging.WARNING, logger="llmft.rewards"):
        per_function, total = score([only], PROMPTS, COMPLETIONS, IDS, COLUMNS)
    assert math.isnan(total[1]) and total[0] == total[2] == 1.0
    [record] = caplog.records
    assert record.getMessage().startswith("All reward functions returned None for the following kwargs:\n{")
    assert (
        "'task': 'geo'" in record.getMessage()
        and "'prompt': 'Name the capital of France.'" in record.getMessage()
    )


def test_trl_own_reward_by_reference_on_conversational_completions() -> None:
    [think] = build_rewards([RewardSpec("trl.rewards:think_format_reward")], ".")
    prompts = [[{"role": "user", "content": "2+5?"}]] * 2
    completions = [
        [{"role": "assistant", "content": "<think>\nadd them\n</think>\n7"}],
        [{"role": "assistant", "content": "7"}],
    ]
    assert score([think], prompts, completions, [[1], [2]], {}).per_function == [[1.0, 0.0]]


def test_an_async_reward_is_awaited(folder: Path) -> None:
    assert score(rewards(folder, "judge"), PROMPTS, COMPLETIONS, IDS, COLUMNS).total == [0.25] * 3


def test_a_builtin_and_a_user_reward_together(folder: Path) -> None:
    built = build_rewards(
        [
            RewardSpec("answer_match", 1.0, {"column": "ground_truth", "extract": "boxed"}),
            RewardSpec("length", -0.1, {"max": 2}),
        ],
        folder,
    )
    per_function, total = score(built, PROMPTS, COMPLETIONS, IDS, COLUMNS)
    assert per_function == [[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]
    assert total == pytest.approx([1.1, 0.0, 0.0], abs=1e-15)


def _failing(folder: Path, body: str) -> Reward:
    (folder / "bad.py").write_text(f"def bad(completions, **kwargs):\n    {body}\n", encoding="utf-8")
    [reward] = build_rewards([RewardSpec("bad.py:bad")], folder)
    return reward


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "return 1 / 0",
            "reward `bad` (`bad.py:bad`) raised ZeroDivisionError: division by zero; "
            "the batch's first prompt: 'What is 6 times 7?'",
        ),
        (
            "return [1.0]",
            "reward `bad` (`bad.py:bad`) returned 1 rewards for 3 completions "
            "(one per completion is needed); the batch's first prompt: 'What is 6 times 7?'",
        ),
        (
            "return 1.0",
            "reward `bad` (`bad.py:bad`) returned 1.0, not a list of floats; the batch's first prompt: "
            "'What is 6 times 7?'",
        ),
        (
            "return [1.0, 'high', 0.0]",
            "reward `bad` (`bad.py:bad`) returned 'high' for completion 1, not a float or None; its prompt: "
            "'Name the capital of France.'",
        ),
    ],
)
def test_a_failing_reward_stops_the_run_naming_it_and_the_prompt(
    folder: Path, body: str, message: str
) -> None:
    with pytest.raises(TrainingError) as err:
        score([_failing(folder, body)], PROMPTS, COMPLETIONS, IDS, COLUMNS)
    assert err.value.message == message
    assert err.value.where == "training.rl.rewards[0]" and err.value.exit_code == 1


def _trl(built: list[Reward], batch: tuple[list, list, list], columns: dict[str, list]):  # noqa: ANN202
    """TRL 1.16's own ``GRPOTrainer._calculate_rewards`` on a stand-in trainer (one process: its gather
    returns the tensor as it is), and its weighted sum with the unscorable rows set to NaN."""
    from types import SimpleNamespace

    import torch
    from trl.trainer.grpo_trainer import GRPOTrainer

    prompts, completions, ids = batch
    trainer = SimpleNamespace(
        accelerator=SimpleNamespace(device=torch.device("cpu"), is_main_process=True),
        # TRL awaits async rewards on an event loop of its own trainer; the stand-in gets plain functions
        reward_funcs=[
            (lambda completions, **kw: [0.25] * len(completions)) if r.name == "judge" else r.func
            for r in built
        ],
        reward_processing_classes=[None] * len(built),
        reward_func_names=[r.name for r in built],
        state=SimpleNamespace(global_step=0),
        args=SimpleNamespace(report_to=[]),
        environments=None,
        _log_completion_extra=None,
        _log_metric=None,
    )
    inputs = [{"prompt": p, **{k: v[i] for k, v in columns.items()}} for i, p in enumerate(prompts)]
    theirs = GRPOTrainer._calculate_rewards(trainer, inputs, prompts, completions, ids)
    total = (theirs * torch.tensor([r.weight for r in built]).unsqueeze(0)).nansum(dim=1)
    total[torch.isnan(theirs).all(dim=1)] = torch.nan
    return theirs, total


@pytest.mark.slow
@pytest.mark.numeric
def test_same_rewards_and_totals_as_trl_calculate_rewards(folder: Path) -> None:
    import torch

    built = rewards(
        folder, "reward_func", "math_only", "length_reward", "judge", weights=(1.0, 0.3, -0.1, 2.0)
    )
    task_match = build_rewards(
        [RewardSpec("answer_match", 0.7, {"column": "task", "extract": "none"})], folder
    )
    batch = ([*PROMPTS, "Say hi."], [*COMPLETIONS, "hi"], [*IDS, [3]])
    columns = {"ground_truth": ["42", "Paris", "7", "x"], "task": ["math", "geo", "math", ""]}
    # all five; then two that both give None on the last row (unscorable: a NaN total)
    for chosen in (built + task_match, [built[1], *task_match]):
        theirs, their_total = _trl(chosen, batch, columns)
        per_function, total = score(chosen, *batch, columns)
        # TRL holds rewards in float32: the same values rounded once, so equal once ours are rounded alike.
        torch.testing.assert_close(
            torch.tensor(per_function).T.float(), theirs, rtol=0, atol=0, equal_nan=True
        )
        # its sum runs in float32 over ≤ 5 terms (≤ 5 roundings of ≤ 2**-24 relative each); ours is exact, and
        # no row's terms cancel (each total is ≥ 0.1 of its largest term), so relative to the total is fair.
        torch.testing.assert_close(
            torch.tensor(total).float(), their_total, rtol=5 * 2**-24 * 10, atol=0, equal_nan=True
        )
    assert math.isnan(total[3]) and not math.isnan(total[2])
