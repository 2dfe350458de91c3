"""Packed preference batches (data.packing with dpo, simpo, orpo, kto, reward) give the padded path's
numbers: per-sequence log-probs, every loss and metric, a reward model's scores; in one row per batch under
per-document attention (CPU) and in several capacity-bounded rows under transformers' block-diagonal mask.
The padded path is the one tests/unit/train/test_preference_vs_trl.py holds to TRL's."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.tolerances import LOSS_REL

from llmft.data.labels import IGNORE
from llmft.data.pair_collate import PairCollator, SequencePacker, UnpairedCollator
from llmft.train import packed_attention
from llmft.train.objectives.pairs import Settings
from llmft.train.objectives.registry import preference_objective
from llmft.train.objectives.reward import packed_scores
from llmft.train.preference.logps import sequence_logps
from llmft.train.preference.reference import frozen

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

PAIRS = [
    {"prompt_ids": [5, 6, 7], "chosen_ids": [8, 9, 10], "rejected_ids": [11, 12]},
    {"prompt_ids": [13, 14], "chosen_ids": [15, 0], "rejected_ids": [16, 17, 18, 19, 20, 21]},
    {"prompt_ids": [20, 21, 22, 23], "chosen_ids": [24, 25], "rejected_ids": [26, 27, 28]},
]
UNPAIRED = [
    {"prompt_ids": [5, 6, 7], "completion_ids": [8, 9, 10], "kl_completion_ids": [32, 33], "desirable": 1},
    {"prompt_ids": [13, 14], "completion_ids": [15], "kl_completion_ids": [8, 9, 10], "desirable": 0},
    {"prompt_ids": [20, 21, 22, 23], "completion_ids": [24, 25], "kl_completion_ids": [15], "desirable": 1},
    {"prompt_ids": [30, 31], "completion_ids": [32, 33, 34], "kl_completion_ids": [24, 25], "desirable": 0},
]
# One row per batch (per-document attention), and rows of at most 12 tokens (several documents per row,
# the longest sequence alone) through transformers' block-diagonal mask.
LAYOUTS = {"one-row": None, "rows-of-12": 12}


@pytest.fixture(scope="module")
def models(tiny_model):  # noqa: ANN201
    """(policy, reference): the tiny Llama and a perturbed copy as the policy, both on per-document
    attention (which falls back to plain SDPA for padded batches)."""
    from transformers import AutoModelForCausalLM

    reference = AutoModelForCausalLM.from_pretrained(tiny_model("llama")).eval()
    policy = copy.deepcopy(reference)
    torch.manual_seed(1)
    with torch.no_grad():
        for param in policy.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return policy, reference


def _attention(model: torch.nn.Module, capacity: int | None) -> None:
    if capacity is None:
        assert packed_attention.enable(model, 16)
    else:
        packed_attention.disable(model)


def _batches(collator: type, examples: list[dict], capacity: int | None) -> tuple[dict, dict]:
    padded = collator(pad_id=0, pad_to_multiple_of=None)(copy.deepcopy(examples))
    packed = collator(pad_id=0, pad_to_multiple_of=8, packed=True, capacity=capacity)(copy.deepcopy(examples))
    return padded, packed


def _close(mine: torch.Tensor | float, want: torch.Tensor | float) -> None:
    """Equal to LOSS_REL of the larger magnitude: the same sums, other matmul shapes (tests/tolerances.py)."""
    mine, want = torch.as_tensor(mine, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
    scale = max(float(want.abs().max()), 1.0)
    torch.testing.assert_close(mine, want, atol=LOSS_REL * scale, rtol=0)


def test_the_packer_lays_sequences_end_to_end_with_restarted_positions() -> None:
    batch = SequencePacker(pad_id=0, pad_to_multiple_of=4)([[5, 6], [7]], [[8], [9, 10]])

    assert batch["input_ids"].tolist() == [[5, 6, 8, 7, 9, 10, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 0, 1]]
    assert batch["sequence_ids"].tolist() == [[0, 0, 0, 1, 1, 1, -1, -1]]
    assert batch["labels"].tolist() == [[IGNORE, IGNORE, 8, IGNORE, 9, 10, IGNORE, IGNORE]]
    assert batch["sequence_lengths"].tolist() == [3, 3]
    assert batch["token_mask"].sum() == 6


def test_a_capacity_puts_the_sequences_in_first_fit_decreasing_rows() -> None:
    batch = SequencePacker(pad_id=0, pad_to_multiple_of=None, capacity=5)(
        [[1], [2, 3], [4]], [[1, 1], [2], [4]]
    )

    assert batch["sequence_ids"].tolist() == [[0, 0, 0, 2, 2], [1, 1, 1, -1, -1]]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sequence_logps_and_the_chosen_nll_equal_the_padded_path(models, layout: str) -> None:
    policy, _ = models
    _attention(policy, LAYOUTS[layout])
    padded, packed = _batches(PairCollator, PAIRS, LAYOUTS[layout])
    with torch.no_grad():
        want, mine = sequence_logps(policy, padded, nll_rows=3), sequence_logps(policy, packed, nll_rows=3)

    assert (packed["input_ids"].shape[0] == 1) == (layout == "one-row")
    assert torch.equal(mine.counts, want.counts)
    assert mine.nll_tokens == want.nll_tokens == 13  # prompt + chosen (16 tokens), less each first token
    _close(mine.sums, want.sums)
    _close(mine.nll, want.nll)


OBJECTIVES = [
    ("dpo", {"loss_type": "sigmoid"}),
    ("dpo", {"loss_type": "robust", "label_smoothing": 0.2}),
    ("dpo", {"loss_type": "ipo"}),
    ("dpo", {"loss_type": "hinge"}),
    ("simpo", {"beta": 2.0, "gamma": 0.5}),
    ("orpo", {}),
    ("kto", {"beta": 0.4, "weights": (1.3, 0.7)}),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("kind", "settings"), OBJECTIVES, ids=lambda v: str(v) if isinstance(v, str) else "")
def test_every_loss_and_metric_equals_the_padded_path(models, layout: str, kind: str, settings: dict) -> None:
    policy, reference = models
    capacity = LAYOUTS[layout]
    _attention(policy, capacity)
    collator, examples = (UnpairedCollator, UNPAIRED) if kind == "kto" else (PairCollator, PAIRS)
    padded, packed = _batches(collator, examples, capacity)
    results = []
    for batch in (padded, packed):
        ref = frozen(copy.deepcopy(reference)) if kind in ("dpo", "kto") else None
        objective = preference_objective(Settings(kind, **settings), ref)
        with torch.no_grad():
            loss, units = objective.loss(policy, batch)
        results.append((float(loss), units, objective.report("eval")))
    (want, want_units, want_metrics), (mine, units, metrics) = results

    assert units == want_units
    _close(mine, want)
    assert metrics.keys() == want_metrics.keys()
    for name in want_metrics:
        _close(metrics[name], want_metrics[name])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dpo_gradients_equal_the_padded_path(models, layout: str) -> None:
    """The backward through packed rows, not only the forward: every gradient of one DPO step."""
    policy, reference = models
    _attention(policy, LAYOUTS[layout])
    grads = []
    for batch in _batches(PairCollator, PAIRS, LAYOUTS[layout]):
        objective = preference_objective(Settings("dpo"), frozen(copy.deepcopy(reference)))
        policy.zero_grad()
        loss, _ = objective.loss(policy, batch)
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in policy.named_parameters()})
    policy.zero_grad()
    for name, want in grads[0].items():
        _close(grads[1][name], want)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_reward_scores_equal_the_models_own_forward(tiny_model, layout: str) -> None:
    """The score is read where the model's own forward reads it in a padded row: the last token that is
    not the pad id (the second chosen answer ends with token 0, the pad id here)."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model("llama"), num_labels=1, pad_token_id=0
    ).eval()
    _attention(model, LAYOUTS[layout])
    padded, packed = _batches(PairCollator, PAIRS, LAYOUTS[layout])
    with torch.no_grad():
        want = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits.squeeze(
            -1
        )
        mine = packed_scores(model, packed)
        loss = [preference_objective(Settings("reward"), None).loss(model, b)[0] for b in (padded, packed)]

    _close(mine, want)
    _close(loss[1], loss[0])


def test_precomputed_reference_log_probs_travel_unchanged_in_the_packed_layout() -> None:
    examples = [dict(e, ref_chosen_logps=-1.5 - i, ref_rejected_logps=-7.25 - i) for i, e in enumerate(PAIRS)]
    padded, packed = _batches(PairCollator, examples, None)

    assert torch.equal(packed["ref_logps"], padded["ref_logps"])
    assert packed["ref_logps"].tolist() == [-1.5, -2.5, -3.5, -7.25, -8.25, -9.25]
