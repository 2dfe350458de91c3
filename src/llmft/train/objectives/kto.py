"""kto: KTO (TRL 1.x's KTOTrainer, loss_type kto) on unpaired completions judged desirable or not (pairs
are split into one desirable and one undesirable row).

The reference point is a KL estimate from mismatched (prompt, completion) pairs of the same batch,
clamped at 0 and not differentiated; desirable and undesirable rows get their own weights.
"""

from __future__ import annotations

import torch

from llmft.config.objectives import JUDGED, PAIRS
from llmft.data.pair_collate import sequence_count
from llmft.train.objectives.base import Batch, Context, Objective, Reference
from llmft.train.objectives.pairs import Settings, Tally, Values, encoder, reference_logps
from llmft.train.objectives.pairs import collate_rows as collate
from llmft.train.preference.logps import sequence_logps

NAME = "kto"
DATA = (JUDGED, PAIRS)
NEEDS_REFERENCE = True
__all__ = ["DATA", "NAME", "NEEDS_REFERENCE", "build", "collate", "encode", "objective"]


def kto_kl(kl_logratios: torch.Tensor) -> torch.Tensor:
    """The batch's KL estimate: mean log-ratio of the mismatched pairs, detached, at least 0."""
    return kl_logratios.mean().detach().clamp(min=0)


def kto_losses(
    logratios: torch.Tensor,
    desirable: torch.Tensor,
    kl: torch.Tensor,
    beta: float,
    weights: tuple[float, float] = (1.0, 1.0),
) -> torch.Tensor:
    """Per-row losses: 1 − σ(β(r − KL)) for desirable rows, 1 − σ(β(KL − r)) for undesirable ones, each times
    its weight (desirable_weight, undesirable_weight)."""
    chosen = weights[0] * (1 - torch.sigmoid(beta * (logratios - kl)))
    rejected = weights[1] * (1 - torch.sigmoid(beta * (kl - logratios)))
    return torch.where(desirable, chosen, rejected)


def weight_advice(desirable: int, undesirable: int, weights: tuple[float, float]) -> str | None:
    """A warning when the weights fall outside the KTO paper's recommended range for this balance (Eq. 8:
    λ_D·n_D / (λ_U·n_U) in [1, 4/3]), or None; the bounds are TRL's."""
    d, u = max(desirable, 1), max(undesirable, 1)
    if d == u:
        return None
    dw, uw = weights
    d_low, d_high = round(u * uw / d, 2), round(u * uw / d * 1.33, 2)
    u_low, u_high = round(d * dw / u / 1.33, 2), round(d * dw / u, 2)
    if d_low <= dw <= d_high or u_low <= uw <= u_high:
        return None
    return (
        f"kto: {desirable} desirable and {undesirable} undesirable rows, but desirable_weight {dw:g} / "
        f"undesirable_weight {uw:g} are outside the recommended range: set EITHER desirable_weight in "
        f"[{d_low}, {d_high}] OR undesirable_weight in [{u_low}, {u_high}] (training.preference)"
    )


def metrics(
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


def units(batch: Batch) -> int:
    """One unit per judged row."""
    return sequence_count(batch)


def objective(s: Settings, reference: Reference | None = None) -> Objective:
    """KTO against ``reference`` (unless batches carry ref_logps / ref_kl_logps)."""
    tally = Tally()

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
        tally.add(model, metrics(s.beta * ratios.detach(), logps.detach(), desirable, kl, s.beta))
        return losses.sum(), losses.numel()

    return Objective(NAME, loss, units, report=tally.report, eval_task="preference")


def build(ctx: Context) -> Objective:
    """KTO with the run's settings; notes a desirable/undesirable weighting outside the recommended range."""
    settings = Settings.of(NAME, ctx.sections.training.preference)
    train = ctx.encoded.examples["train"]
    good = sum(int(e["desirable"]) for e in train)  # type: ignore[call-overload]
    advice = weight_advice(good, len(train) - good, settings.weights)
    if advice:
        ctx.notes.append(advice)
    return objective(settings, ctx.reference)


encode = encoder(NAME, unpaired=True)
