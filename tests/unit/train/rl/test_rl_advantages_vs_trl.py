"""Advantages and the truncated-completion mask equal TRL 1.16's, computed by TRL's own
``GRPOTrainer._generate_and_score_completions`` / ``RLOOTrainer._generate_and_score_completions`` on the
same completions, rewards and log-probs (generation, reward functions and forward passes stubbed).

The batch holds what the edge cases need: a group whose rewards are all equal (advantage 0, not 0/0), a
completion no reward function scored (NaN: left out of its group, advantage 0), one scored by only one
function, and truncated completions (no EOS at the end).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tests.unit.train.rl.trl_standins import EOS, PAD, scoring_self

from llmft.train.rl.advantages import combine_rewards, group_advantages, rloo_advantages, rloo_kl_penalised
from llmft.train.rl.truncation import mask_truncated, truncated_rows

pytestmark = pytest.mark.numeric  # compares numbers with another library
trl = pytest.importorskip("trl", reason="TRL is the reference implementation (test extra)")
from trl import GRPOTrainer, RLOOTrainer  # noqa: E402

# Both sides do the same float64 arithmetic (means, stds and sums over ≤ 12 values of size ≲ 3): they agree
# to ~1e-15; 1e-6 is the bar, and any real difference (another baseline, Bessel's n vs n-1, the 1e-4
# guard) moves an advantage by ≥ 1e-3.
TOL = 1e-6
GENERATIONS = 4
WEIGHTS = torch.tensor([1.0, 0.5], dtype=torch.float64)
# Three prompts × four completions; rows 2, 5, 8 and 11 run out of room (no EOS at their end), row 6 ends
# on the pad token (not truncated, as in TRL).
COMPLETIONS = [
    [7, 8, EOS],
    [7, EOS],
    [7, 8, 9, 10, 11, 12],
    [9, 9, 9, EOS],
    [7, EOS],
    [8, 8, 8, 8, 8, 8],
    [7, 7, PAD],
    [EOS],
    [7, 8, 9, 10, 11, 12],
    [7, 8, 9, 10, EOS],
    [7, EOS],
    [3, 4, 5],
]


def _rewards() -> torch.Tensor:
    torch.manual_seed(0)
    rewards = torch.randn(len(COMPLETIONS), 2, dtype=torch.float64)
    rewards[4:8] = torch.tensor([0.5, 1.0], dtype=torch.float64)  # a group of equal rewards
    rewards[9] = float("nan")  # scored by no function
    rewards[10, 1] = float("nan")  # scored by the first function only
    return rewards


def _padded() -> tuple[torch.Tensor, torch.Tensor]:
    length = max(map(len, COMPLETIONS))
    ids = torch.full((len(COMPLETIONS), length), PAD)
    mask = torch.zeros(len(COMPLETIONS), length, dtype=torch.long)
    for row, tokens in enumerate(COMPLETIONS):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
    return ids, mask


def _args() -> SimpleNamespace:
    return SimpleNamespace(
        steps_per_generation=1,
        gradient_accumulation_steps=1,
        per_device_train_batch_size=len(COMPLETIONS),
        gradient_checkpointing_kwargs=None,
    )


def _logps(seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return -torch.rand(len(COMPLETIONS), max(map(len, COMPLETIONS)), dtype=torch.float64) * 3


def _trl_grpo(scale: str, mask_truncated_completions: bool = False) -> dict[str, torch.Tensor]:
    fake = scoring_self(
        "grpo",
        COMPLETIONS,
        _rewards(),
        {},
        args=_args(),
        num_generations=GENERATIONS,
        num_iterations=1,
        multi_objective_aggregation="sum_then_normalize",
        reward_weights=WEIGHTS,
        scale_rewards=scale,
        beta=0.0,
        mask_truncated_completions=mask_truncated_completions,
    )
    return GRPOTrainer._generate_and_score_completions(fake, [{"prompt": "p"}] * len(COMPLETIONS))


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages_equal_grpo_trainers(scale: str) -> None:
    theirs = _trl_grpo(scale)["advantages"]
    ours = group_advantages(combine_rewards(_rewards(), WEIGHTS), GENERATIONS, scale)  # type: ignore[arg-type]
    torch.testing.assert_close(ours, theirs, atol=TOL, rtol=0)
    assert torch.all(ours[4:8] == 0) and ours[9] == 0  # equal rewards, and the unscored completion
    assert not torch.all(ours[8:12] == 0)  # the other completions of the unscored one's prompt still learn


def test_truncated_completions_are_masked_as_grpo_trainer_masks_them() -> None:
    theirs = _trl_grpo("group", mask_truncated_completions=True)
    ids, mask = _padded()
    truncated = truncated_rows(ids, mask, stops=[EOS, PAD])
    assert truncated.tolist() == [row in (2, 5, 8, 11) for row in range(len(COMPLETIONS))]
    ours = mask_truncated(mask, truncated)
    assert torch.equal(ours, theirs["completion_mask"])
    assert int(ours.sum()) == int(theirs["num_items_in_batch"])  # dapo's divisor counts only what is kept


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.05])
def test_leave_one_out_advantages_equal_rloo_trainers(beta: float, normalize: bool) -> None:
    old, ref = _logps(1), _logps(2)
    fake = scoring_self(
        "rloo",
        COMPLETIONS,
        _rewards(),
        {"old": old, "ref": ref},
        args=_args(),
        num_generations=GENERATIONS,
        reward_weights=WEIGHTS,
        reward_clip_range=None,
        beta=beta,
        normalize_advantages=normalize,
        mask_truncated_completions=False,
    )
    theirs = RLOOTrainer._generate_and_score_completions(fake, [{"prompt": "p"}] * len(COMPLETIONS))
    _, mask = _padded()
    rewards = rloo_kl_penalised(combine_rewards(_rewards(), WEIGHTS), old, ref, mask, beta)
    ours = rloo_advantages(rewards, GENERATIONS, normalize)
    torch.testing.assert_close(ours, theirs["advantages"], atol=TOL, rtol=0)
    torch.testing.assert_close((old * mask).sum(1), theirs["old_logps"], atol=TOL, rtol=0)
    assert ours[9] == 0


def test_leave_one_out_baseline_by_hand() -> None:
    """One group of three: each advantage is its reward minus the mean of the other two."""
    ours = rloo_advantages(torch.tensor([1.0, 2.0, 6.0]), 3)
    assert ours.tolist() == [1.0 - 4.0, 2.0 - 3.5, 6.0 - 1.5]
