"""The policy losses equal TRL 1.16's, computed by TRL's own ``GRPOTrainer._compute_loss`` and
``RLOOTrainer._compute_loss`` on the same log-probs, old and reference log-probs, advantages and masks:
every loss_type × importance_sampling_level, with and without the KL term and old log-probs, the loss, its
gradient with respect to the log-probs, the k3 KL and the clip-ratio metrics.

The batch: two groups of four completions of different lengths, one fully masked (a truncated completion
that mask_truncated_completions dropped), one group with all-equal rewards (advantage 0), old log-probs far
enough from the policy's that the clip bites on both sides.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch
from tests.unit.train.rl.trl_standins import completion_inputs, loss_self

from llmft.train.rl.policy_loss import PolicyBatch, PolicySettings, grpo_loss, k3_kl, rloo_loss

pytestmark = pytest.mark.numeric  # compares numbers with another library
trl = pytest.importorskip("trl", reason="TRL is the reference implementation (test extra)")
from trl import GRPOTrainer, RLOOTrainer  # noqa: E402

# Both sides do the same float64 arithmetic on ≤ 48 tokens of size ≲ 10 (exp, clamp, min, masked sums): they
# agree to ~1e-15. 1e-6 is the bar; a real difference (another normaliser, a missing ratio on the
# KL, a clip bound off) moves the loss by ≥ 1e-3. float64 keeps the comparison about the formulas: in
# float32 a sum in another order alone could move the loss by ~48 ulps ≈ 6e-6.
TOL = 1e-6
LENGTHS = [6, 3, 1, 4, 6, 2, 5, 0]  # the last: a truncated completion, masked out
TOKENS = max(LENGTHS)
EPSILON, EPSILON_HIGH = 0.2, 0.28
METRICS = ["clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"]
ROW_METRICS = ["clip_ratio/low_min", "clip_ratio/high_max"]


def _tensors() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    rows = len(LENGTHS)
    logps = -torch.rand(rows, TOKENS, dtype=torch.float64) * 4
    equal_group = [0.0] * 4  # a group whose rewards were all equal
    advantages = torch.tensor([1.2, -0.7, 0.5, -1.1, *equal_group], dtype=torch.float64)
    # Whole rows moved off the policy, so sequence-level (GSPO) ratios clip too: row 0 high, row 1 low.
    shift = torch.tensor([-0.6, 0.6, 0.2, -0.2, 0.6, -0.6, 0.0, 0.0], dtype=torch.float64).unsqueeze(1)
    mask = (torch.arange(TOKENS) < torch.tensor(LENGTHS).unsqueeze(1)).long()
    return {
        "logps": logps,
        "old": logps + shift + 0.4 * torch.randn(rows, TOKENS, dtype=torch.float64),
        "ref": logps + 0.3 * torch.randn(rows, TOKENS, dtype=torch.float64),
        "advantages": advantages,
        "mask": mask,
    }


def _trl_grpo(t: dict[str, torch.Tensor], settings: PolicySettings, with_old: bool, num_items: float):  # noqa: ANN202
    logps = t["logps"].clone().requires_grad_(True)
    fake = loss_self(
        logps,
        args=SimpleNamespace(use_bias_correction_kl=True, delta=None, steps_per_generation=1),
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level=settings.importance_sampling_level,
        beta=settings.beta,
        loss_type=settings.loss_type,
        epsilon_low=settings.epsilon,
        epsilon_high=settings.epsilon_high,
        current_gradient_accumulation_steps=1,
        max_completion_length=settings.max_completion_length,
        _entropy_bonus_enabled=False,
    )
    inputs = {
        **completion_inputs(t["mask"]),
        "advantages": t["advantages"],
        "ref_per_token_logps": t["ref"],
        "num_items_in_batch": torch.tensor(num_items, dtype=torch.float64),
    }
    if with_old:
        inputs["old_per_token_logps"] = t["old"]
    loss = GRPOTrainer._compute_loss(fake, fake.model, inputs)
    loss.backward()
    return loss, logps.grad, {k: v[-1] for k, v in fake._metrics["train"].items()}


CASES = list(
    itertools.product(["grpo", "bnpo", "dr_grpo", "dapo"], ["token", "sequence"], [0.0, 0.04], [True, False])
)


@pytest.mark.parametrize(("loss_type", "level", "beta", "with_old"), CASES)
def test_grpo_loss_equals_grpo_trainers(loss_type: str, level: str, beta: float, with_old: bool) -> None:
    t = _tensors()
    settings = PolicySettings(loss_type, level, EPSILON, EPSILON_HIGH, beta, max_completion_length=TOKENS + 2)  # type: ignore[arg-type]
    num_items = 2.0 * float(
        t["mask"].sum()
    )  # dapo: the accumulated batch's tokens, more than this micro-batch's
    loss_theirs, grad_theirs, metrics_theirs = _trl_grpo(t, settings, with_old, num_items)

    logps = t["logps"].clone().requires_grad_(True)
    batch = PolicyBatch(
        logps, t["advantages"], t["mask"], t["old"] if with_old else None, t["ref"], num_items=num_items
    )
    ours = grpo_loss(batch, settings)
    ours.loss.backward()

    torch.testing.assert_close(ours.loss, loss_theirs, atol=TOL, rtol=0)
    torch.testing.assert_close(logps.grad, grad_theirs, atol=TOL, rtol=0)
    names = METRICS + ROW_METRICS + (["kl"] if beta else [])
    assert set(names) <= set(metrics_theirs)
    for name in names:
        assert ours.metrics[name] == pytest.approx(metrics_theirs[name], abs=TOL, nan_ok=True), name
    if with_old:  # the data makes the clip bite on both sides, so the clipped branches are compared too
        assert ours.metrics["clip_ratio/low_mean"] > 0 and ours.metrics["clip_ratio/high_mean"] > 0


@pytest.mark.parametrize("epsilon_high", [None, EPSILON_HIGH])
def test_rloo_loss_equals_rloo_trainers(epsilon_high: float | None) -> None:
    t = _tensors()
    settings = PolicySettings(epsilon=EPSILON, epsilon_high=epsilon_high)
    old_sequence = (t["old"] * t["mask"]).sum(1) * 0.95  # sequence ratios spread on both sides of the clip
    logps = t["logps"].clone().requires_grad_(True)
    fake = loss_self(logps, epsilon_low=EPSILON, epsilon_high=settings.bounds[1] - 1)
    inputs = {**completion_inputs(t["mask"]), "old_logps": old_sequence, "advantages": t["advantages"]}
    loss_theirs = RLOOTrainer._compute_loss(fake, fake.model, inputs)
    loss_theirs.backward()

    mine = t["logps"].clone().requires_grad_(True)
    ours = rloo_loss(PolicyBatch(mine, t["advantages"], t["mask"]), old_sequence, settings)
    ours.loss.backward()

    torch.testing.assert_close(ours.loss, loss_theirs, atol=TOL, rtol=0)
    torch.testing.assert_close(mine.grad, logps.grad, atol=TOL, rtol=0)
    for name in METRICS + ROW_METRICS:
        assert ours.metrics[name] == pytest.approx(fake._metrics["train"][name][-1], abs=TOL), name


def test_k3_kl_by_hand() -> None:
    """exp(r) - r - 1 with r = ref - policy: 0 where they agree, positive either way."""
    logps = torch.tensor([-1.0, -2.0, -0.5], dtype=torch.float64)
    ref = torch.tensor([-1.0, -1.0, -1.5], dtype=torch.float64)
    want = [0.0, torch.e - 1 - 1, torch.e**-1 + 1 - 1]
    torch.testing.assert_close(k3_kl(logps, ref), torch.tensor(want, dtype=torch.float64), atol=1e-15, rtol=0)


def test_dr_grpo_needs_max_completion_length() -> None:
    t = _tensors()
    with pytest.raises(ValueError, match="dr_grpo needs max_completion_length"):
        grpo_loss(PolicyBatch(t["logps"], t["advantages"], t["mask"]), PolicySettings("dr_grpo"))


def test_the_config_section_becomes_the_losss_settings() -> None:
    from llmft.config.schema import RlConfig
    from llmft.train.rl.settings import policy_settings

    rl = RlConfig.model_validate({"rewards": [{"function": "f"}], "epsilon_high": 0.28, "loss_type": "bnpo"})
    grpo = policy_settings(rl, "grpo")
    assert grpo == PolicySettings("bnpo", "token", 0.2, 0.28, 0.0, 512)
    assert grpo.bounds == (0.8, 1.28)
    assert policy_settings(RlConfig(), "rloo").beta == 0.05  # RLOO's default KL weight
