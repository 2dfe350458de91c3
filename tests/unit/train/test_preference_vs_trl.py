"""The preference objectives give TRL 1.x's numbers on the same model and batch (TRL is the reference
people compare with): per-sequence log-probs against a hand computation from full logits, then DPO (each
loss type), SimPO and ORPO (trl.experimental's CPO/ORPO trainers), KTO and reward-model losses and metrics.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from llmft.data.labels import IGNORE
from llmft.data.pair_collate import PairCollator, UnpairedCollator
from llmft.train.objectives.pairs import Settings
from llmft.train.objectives.registry import preference_objective
from llmft.train.preference.logps import sequence_logps
from llmft.train.preference.reference import frozen

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

trl = pytest.importorskip("trl", reason="TRL is the reference implementation (test extra)")
# Both sides run the model on the same rows; they differ in how they pad, reduce the ≤ 8 per-token log-probs
# of a sequence (|logp| ≲ 10 each, a vocabulary of a few hundred) and combine the sums: a float32 reduction
# in another order moves a sum by ≤ n·EPS·Σ|x| ≈ 8 × 1.2e-7 × 80 ≈ 8e-5 (Higham; tests/tolerances.py).
# A real difference (a token off, a missing beta, a wrong sign) moves these numbers by 1e-2 or more.
TOL = 1e-4
PAIR_METRICS = [
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
]

PAIRS = [
    {"prompt_ids": [5, 6, 7], "chosen_ids": [8, 9, 10], "rejected_ids": [11, 12]},
    {"prompt_ids": [13, 14], "chosen_ids": [15], "rejected_ids": [16, 17, 18, 19]},
    {"prompt_ids": [20, 21, 22, 23], "chosen_ids": [24, 25], "rejected_ids": [26, 27, 28]},
]
UNPAIRED = [
    {"prompt_ids": [5, 6, 7], "completion_ids": [8, 9, 10], "desirable": 1},
    {"prompt_ids": [13, 14], "completion_ids": [15], "desirable": 0},
    {"prompt_ids": [20, 21, 22, 23], "completion_ids": [24, 25], "desirable": 1},
    {"prompt_ids": [30, 31], "completion_ids": [32, 33, 34], "desirable": 0},
]


@pytest.fixture(scope="module")
def models(tiny_model):  # noqa: ANN201
    """(policy, reference, tokenizer): the tiny Llama and a copy with perturbed weights as the policy."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model("llama")
    reference = AutoModelForCausalLM.from_pretrained(path).eval()
    policy = copy.deepcopy(reference)
    torch.manual_seed(1)
    with torch.no_grad():
        for param in policy.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return policy, reference, AutoTokenizer.from_pretrained(path)


def _pair_batch() -> dict[str, torch.Tensor]:
    return PairCollator(pad_id=0, pad_to_multiple_of=None)(copy.deepcopy(PAIRS))


def _ours(kind: str, policy, reference, batch, **settings) -> tuple[float, dict[str, float]]:  # noqa: ANN001
    objective = preference_objective(
        Settings(kind, **settings), frozen(copy.deepcopy(reference)) if reference else None
    )
    with torch.no_grad():
        loss, units = objective.loss(policy, batch)
    return float(loss) / units, objective.report("eval")


def _close(ours: dict[str, float], theirs: dict[str, float], names: list[str]) -> None:
    for name in names:
        assert ours[name] == pytest.approx(theirs[name], abs=TOL), name


def test_sequence_logps_equal_a_hand_computation_from_full_logits(models) -> None:
    policy, _, _ = models
    batch = _pair_batch()
    with torch.no_grad():
        got = sequence_logps(policy, batch, nll_rows=3)
        logits = policy(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    logp = logits[:, :-1].log_softmax(-1).gather(-1, batch["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)
    scored = batch["labels"][:, 1:] != IGNORE
    for row in range(6):
        assert float(got.sums[row]) == pytest.approx(float(logp[row][scored[row]].sum()), abs=TOL)
        assert int(got.counts[row]) == int(scored[row].sum())
    attended = batch["attention_mask"][:3, 1:].bool()
    assert float(got.nll) == pytest.approx(float(-logp[:3][attended].sum()), abs=TOL)
    assert got.nll_tokens == int(attended.sum())
    assert int(got.counts[0]) == 3 and int(got.counts[3]) == 2, "chosen rows first, then rejected"


def _trl_dpo(models, loss_type: str, beta: float, label_smoothing: float, tmp_path):  # noqa: ANN001, ANN202
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    policy, reference, tokenizer = models
    args = DPOConfig(
        output_dir=str(tmp_path), report_to=[], use_cpu=True, beta=beta, loss_type=[loss_type],
        label_smoothing=label_smoothing, save_strategy="no", bf16=False,
    )  # fmt: skip
    data = Dataset.from_list([{"prompt": "a", "chosen": " b", "rejected": " c"}])
    return DPOTrainer(
        model=copy.deepcopy(policy), ref_model=copy.deepcopy(reference), args=args, train_dataset=data,
        processing_class=tokenizer,
    )  # fmt: skip


def _trl_layout(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our stacked batch in DPOTrainer's keys (completion_mask instead of labels)."""
    return {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "completion_mask": (batch["labels"] != IGNORE).long(),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("loss_type", "label_smoothing"), [("sigmoid", 0.0), ("robust", 0.2), ("ipo", 0.0), ("hinge", 0.0)]
)
def test_dpo_loss_and_rewards_equal_trl(models, loss_type: str, label_smoothing: float, tmp_path) -> None:
    policy, reference, _ = models
    trainer = _trl_dpo(models, loss_type, 0.3, label_smoothing, tmp_path)
    trainer.model.eval()
    batch = _pair_batch()
    with torch.no_grad():
        theirs = float(trainer._compute_loss(trainer.model, _trl_layout(batch), False))
    their_metrics = {k: v[-1] for k, v in trainer._metrics["eval"].items()}
    loss, metrics = _ours(
        "dpo", policy, reference, batch, beta=0.3, loss_type=loss_type, label_smoothing=label_smoothing
    )
    assert loss == pytest.approx(theirs, abs=TOL)
    assert abs(metrics["rewards/margins"]) > 1e-3, "policy and reference differ: the check has teeth"
    _close(metrics, their_metrics, PAIR_METRICS)


def _cpo_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our stacked batch in the CPO/ORPO trainers' chosen_*/rejected_* keys."""
    out = {}
    for name, half in (("chosen", slice(0, 3)), ("rejected", slice(3, 6))):
        out[f"{name}_input_ids"] = batch["input_ids"][half]
        out[f"{name}_attention_mask"] = batch["attention_mask"][half]
        out[f"{name}_labels"] = batch["labels"][half]
    return out


def _stub(cls: type, **attrs: object) -> object:
    """A trainer object with only the attributes its loss code reads (no dataset, no optimizer)."""
    from accelerate import Accelerator

    trainer = cls.__new__(cls)
    common = {"is_encoder_decoder": False, "aux_loss_enabled": False, "accelerator": Accelerator(cpu=True)}
    for key, value in {**common, **attrs}.items():
        setattr(trainer, key, value)
    return trainer


def test_simpo_loss_and_rewards_equal_trl_cpo_trainer(models) -> None:
    from trl.experimental.cpo import CPOTrainer

    policy, _, _ = models
    settings = {"beta": 2.0, "simpo_gamma": 0.8, "loss_type": "simpo", "cpo_alpha": 0.0}
    trainer = _stub(CPOTrainer, **settings, label_smoothing=0.0, alpha=0.0, pad_token_id=0)
    batch = _pair_batch()
    with torch.no_grad():
        theirs, their_metrics = trainer.get_batch_loss_metrics(policy, _cpo_batch(batch), train_eval="train")
    loss, metrics = _ours("simpo", policy, None, batch, beta=2.0, gamma=0.8)
    assert loss == pytest.approx(float(theirs), abs=TOL)
    _close(metrics, their_metrics, PAIR_METRICS)


def test_orpo_loss_and_rewards_equal_trl_orpo_trainer(models) -> None:
    from trl.experimental.orpo import ORPOTrainer

    policy, _, _ = models
    trainer = _stub(ORPOTrainer, beta=0.25, padding_value=0)
    batch = _pair_batch()
    with torch.no_grad():
        theirs, their_metrics = trainer.get_batch_loss_metrics(policy, _cpo_batch(batch), train_eval="train")
    loss, metrics = _ours("orpo", policy, None, batch, beta=0.25)
    assert loss == pytest.approx(float(theirs), abs=TOL)
    names = ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen"]
    _close(
        metrics, their_metrics, [*names, "logps/rejected", "nll_loss", "log_odds_ratio", "log_odds_chosen"]
    )


@pytest.mark.slow
def test_kto_loss_kl_and_rewards_equal_trl(models, tmp_path) -> None:
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    policy, reference, tokenizer = models
    args = KTOConfig(
        output_dir=str(tmp_path), report_to=[], use_cpu=True, beta=0.4, desirable_weight=1.3,
        undesirable_weight=0.7, save_strategy="no", per_device_train_batch_size=2, bf16=False,
    )  # fmt: skip
    data = Dataset.from_list(
        [
            {"prompt": "a", "completion": " b", "label": True},
            {"prompt": "a", "completion": " c", "label": False},
        ]
    )
    trainer = KTOTrainer(
        model=copy.deepcopy(policy), ref_model=copy.deepcopy(reference), args=args, train_dataset=data,
        processing_class=tokenizer,
    )  # fmt: skip
    trainer.model.eval()
    from llmft.data.preference import PairLimits, add_kl_partners

    examples = copy.deepcopy(UNPAIRED)
    add_kl_partners(examples, PairLimits(64, 32))
    batch = UnpairedCollator(pad_id=0, pad_to_multiple_of=None)(examples)
    theirs_batch = {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "completion_mask": (batch["labels"] != IGNORE).long(),
        "KL_input_ids": batch["kl_input_ids"],
        "KL_attention_mask": batch["kl_attention_mask"],
        "KL_completion_mask": (batch["kl_labels"] != IGNORE).long(),
        "label": batch["desirable"],
    }
    with torch.no_grad():
        theirs = float(trainer._compute_loss(trainer.model, theirs_batch, False))
    their_metrics = {k: v[-1] for k, v in trainer._metrics["eval"].items()}
    loss, metrics = _ours("kto", policy, reference, batch, beta=0.4, weights=(1.3, 0.7))
    assert loss == pytest.approx(theirs, abs=TOL)
    _close(metrics, their_metrics, ["kl", *[m for m in PAIR_METRICS if m != "rewards/accuracies"]])


def test_reward_model_loss_and_accuracy_equal_trl(tiny_model) -> None:
    from transformers import AutoModelForSequenceClassification
    from trl import RewardTrainer

    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model("llama"), num_labels=1, pad_token_id=0
    ).eval()
    trainer = _stub(
        RewardTrainer, model=model, _metrics={"train": {}, "eval": {}}, _total_train_tokens=0, _tp_size=1,
        args=SimpleNamespace(center_rewards_coefficient=None),
    )  # fmt: skip
    from collections import defaultdict

    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    batch = _pair_batch()
    with torch.no_grad():
        theirs = float(
            trainer.compute_loss(
                model, {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
            )
        )
    loss, metrics = _ours("reward", model, None, batch)
    assert loss == pytest.approx(theirs, abs=TOL)
    their_metrics = {k: v[-1] for k, v in trainer._metrics["eval"].items()}
    _close(metrics, their_metrics, ["accuracy", "margin", "mean_reward"])
