"""The preference objectives as ``Objective``s: summed loss over pairs (KTO: rows) and the metrics TRL logs.

Metrics (rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen,
logps/rejected; kl for KTO; accuracy and margin for reward models) are kept as detached per-batch sums,
separately for training and evaluation (by ``model.training``), and averaged per pair when reported: the
loop adds them to each logging step, the trainer to each evaluation (``eval_rewards/accuracies``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from llmft.config.schema import PreferenceConfig
from llmft.train.objectives import Batch, Objective
from llmft.train.preference.cpo import orpo_log_odds, simpo_losses
from llmft.train.preference.dpo import dpo_losses
from llmft.train.preference.kto import kto_kl, kto_losses
from llmft.train.preference.logps import sequence_logps
from llmft.train.preference.reward import bradley_terry_losses, rewards

# The policy and a batch → the reference model's summed completion log-probs of the batch's rows.
Reference = Callable[[torch.nn.Module, Batch], torch.Tensor]
Values = dict[str, tuple[torch.Tensor, int]]
PAIR_OBJECTIVES = ("dpo", "simpo", "orpo", "reward")
OBJECTIVES = (*PAIR_OBJECTIVES, "kto")
NEEDS_REFERENCE = ("dpo", "kto")


@dataclass(frozen=True)
class Settings:
    """The settings one objective reads, with TRL's defaults where the config leaves them unset."""

    kind: str
    beta: float = 0.1
    loss_type: str = "sigmoid"
    label_smoothing: float = 0.0
    gamma: float = 0.5
    weights: tuple[float, float] = (1.0, 1.0)

    @classmethod
    def of(cls, kind: str, cfg: PreferenceConfig) -> Settings:
        return cls(
            kind,
            beta=cfg.beta if cfg.beta is not None else 0.1,
            loss_type=cfg.loss_type or "sigmoid",
            label_smoothing=cfg.label_smoothing or 0.0,
            gamma=cfg.gamma if cfg.gamma is not None else 0.5,
            weights=(cfg.desirable_weight or 1.0, cfg.undesirable_weight or 1.0),
        )


class Tally:
    """Per-mode sums of detached metric values and their counts, averaged and reset when reported."""

    def __init__(self) -> None:
        self._sums: dict[str, dict[str, list[object]]] = {"train": {}, "eval": {}}

    def add(self, model: torch.nn.Module, values: Values) -> None:
        sums = self._sums["train" if model.training else "eval"]
        for name, (total, count) in values.items():
            entry = sums.setdefault(name, [0.0, 0])
            entry[0] = entry[0] + total.detach().float()  # type: ignore[operator]
            entry[1] = int(entry[1]) + count  # type: ignore[call-overload]

    def report(self, mode: str) -> dict[str, float]:
        sums, self._sums[mode] = self._sums[mode], {}
        return {name: float(total) / count for name, (total, count) in sums.items() if count}  # type: ignore[arg-type]


def pair_metrics(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
) -> Values:
    n = chosen_rewards.numel()
    return {
        "rewards/chosen": (chosen_rewards.sum(), n),
        "rewards/rejected": (rejected_rewards.sum(), n),
        "rewards/accuracies": ((chosen_rewards > rejected_rewards).float().sum(), n),
        "rewards/margins": ((chosen_rewards - rejected_rewards).sum(), n),
        "logps/chosen": (chosen_logps.sum(), n),
        "logps/rejected": (rejected_logps.sum(), n),
    }


def reference_logps(
    model: torch.nn.Module, batch: Batch, reference: Reference | None, cached: torch.Tensor | None
) -> torch.Tensor:
    """The precomputed values when the batch carries them, else the reference's, without gradients."""
    if cached is not None:
        return cached
    if reference is None:
        raise RuntimeError("no reference log-probs: neither precomputed nor a reference model")
    with torch.no_grad():
        return reference(model, batch)


def pair_units(batch: Batch) -> int:
    return int(batch["input_ids"].shape[0]) // 2


def row_units(batch: Batch) -> int:
    return int(batch["input_ids"].shape[0])


def _dpo(s: Settings, reference: Reference | None, tally: Tally) -> Callable[..., tuple[torch.Tensor, int]]:
    def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        logps = sequence_logps(model, batch)
        ref = reference_logps(model, batch, reference, batch.get("ref_logps"))
        chosen, rejected = logps.sums.chunk(2)
        ref_chosen, ref_rejected = ref.to(chosen.dtype).chunk(2)
        chosen_ratio, rejected_ratio = chosen - ref_chosen, rejected - ref_rejected
        losses = dpo_losses(
            chosen_ratio, rejected_ratio, s.beta, s.loss_type, s.label_smoothing, logps.counts.chunk(2)
        )
        tally.add(model, pair_metrics(s.beta * chosen_ratio, s.beta * rejected_ratio, chosen, rejected))
        return losses.sum(), losses.numel()

    return loss


def _simpo(s: Settings, tally: Tally) -> Callable[..., tuple[torch.Tensor, int]]:
    def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        chosen, rejected = sequence_logps(model, batch).means.chunk(2)
        losses = simpo_losses(chosen, rejected, s.beta, s.gamma)
        tally.add(model, pair_metrics(s.beta * chosen, s.beta * rejected, chosen, rejected))
        return losses.sum(), losses.numel()

    return loss


def _orpo(s: Settings, tally: Tally) -> Callable[..., tuple[torch.Tensor, int]]:
    """NLL of the chosen rows (TRL: every attended token, prompt included, averaged over the batch's
    tokens) minus β · mean log σ(log-odds ratio); summed over pairs as pairs × that batch value."""

    def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        pairs = pair_units(batch)
        logps = sequence_logps(model, batch, nll_rows=pairs)
        chosen, rejected = logps.means.chunk(2)
        log_odds = orpo_log_odds(chosen, rejected)
        ratio = torch.nn.functional.logsigmoid(log_odds)
        nll = logps.nll / max(logps.nll_tokens, 1)  # type: ignore[operator]
        values = pair_metrics(s.beta * chosen, s.beta * rejected, chosen, rejected)
        values.update(
            {
                "nll_loss": (nll * pairs, pairs),
                "log_odds_ratio": (ratio.sum(), pairs),
                "log_odds_chosen": (log_odds.sum(), pairs),
            }
        )
        tally.add(model, values)
        return nll * pairs - s.beta * ratio.sum(), pairs

    return loss


def _kto(s: Settings, reference: Reference | None, tally: Tally) -> Callable[..., tuple[torch.Tensor, int]]:
    def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        kl_batch = {k[3:]: v for k, v in batch.items() if k.startswith("kl_")}
        with torch.no_grad():
            kl_logps = sequence_logps(model, kl_batch).sums
        ref_kl = reference_logps(model, kl_batch, reference, batch.get("ref_kl_logps"))
        kl = kto_kl(kl_logps - ref_kl.to(kl_logps.dtype))
        logps = sequence_logps(model, batch).sums
        ratios = logps - reference_logps(model, batch, reference, batch.get("ref_logps")).to(logps.dtype)
        desirable = batch["desirable"].bool()
        losses = kto_losses(ratios, desirable, kl, s.beta, s.weights)
        tally.add(model, _kto_metrics(s.beta * ratios.detach(), logps.detach(), desirable, kl, s.beta))
        return losses.sum(), losses.numel()

    return loss


def _kto_metrics(
    rewards_: torch.Tensor, logps: torch.Tensor, desirable: torch.Tensor, kl: torch.Tensor, beta: float
) -> Values:
    """TRL's KTO metrics, plus rewards/accuracies: rows on the right side of the KL reference point."""
    n_good, n_bad = int(desirable.sum()), int((~desirable).sum())
    values: Values = {
        "kl": (kl, 1),
        "rewards/accuracies": ((desirable == (rewards_ > beta * kl)).float().sum(), len(desirable)),
    }
    if n_good:
        values["rewards/chosen"] = (rewards_[desirable].sum(), n_good)
        values["logps/chosen"] = (logps[desirable].sum(), n_good)
    if n_bad:
        values["rewards/rejected"] = (rewards_[~desirable].sum(), n_bad)
        values["logps/rejected"] = (logps[~desirable].sum(), n_bad)
    if n_good and n_bad:
        values["rewards/margins"] = (rewards_[desirable].mean() - rewards_[~desirable].mean(), 1)
    return values


def _reward(tally: Tally) -> Callable[..., tuple[torch.Tensor, int]]:
    def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        chosen, rejected = rewards(model, batch)
        losses = bradley_terry_losses(chosen, rejected)
        n = chosen.numel()
        tally.add(
            model,
            {
                "accuracy": ((chosen > rejected).float().sum(), n),
                "margin": ((chosen - rejected).sum(), n),
                "mean_reward": ((chosen.sum() + rejected.sum()) / 2, n),
            },
        )
        return losses.sum(), n

    return loss


def preference_objective(settings: Settings, reference: Reference | None = None) -> Objective:
    """The objective ``settings.kind`` names; ``reference`` for dpo/kto unless batches carry ref_logps."""
    tally = Tally()
    kind = settings.kind
    loss = {
        "dpo": lambda: _dpo(settings, reference, tally),
        "simpo": lambda: _simpo(settings, tally),
        "orpo": lambda: _orpo(settings, tally),
        "kto": lambda: _kto(settings, reference, tally),
        "reward": lambda: _reward(tally),
    }[kind]()
    units = row_units if kind == "kto" else pair_units
    return Objective(kind, loss, units, report=tally.report, eval_task="preference")
