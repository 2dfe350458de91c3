"""orpo: ORPO (TRL's ORPO trainer, under ``trl.experimental`` in TRL 1.x): the chosen rows' NLL plus a
log-odds-ratio term on length-averaged log-probs, no reference."""

from __future__ import annotations

import torch

from llmft.config.objectives import PAIRS
from llmft.train.objectives import pairs as shared
from llmft.train.objectives.base import Batch, Objective, Reference
from llmft.train.objectives.pairs import collate_pairs as collate
from llmft.train.preference.logps import sequence_logps

NAME = "orpo"
DATA = (PAIRS,)
NEEDS_REFERENCE = False
__all__ = ["DATA", "NAME", "NEEDS_REFERENCE", "build", "collate", "encode", "objective"]


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(x)) for x < 0, stable on both sides of −ln 2."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def orpo_log_odds(chosen_mean: torch.Tensor, rejected_mean: torch.Tensor) -> torch.Tensor:
    """log odds(chosen) − log odds(rejected), with odds(y) = p / (1 − p) on average log-probs p."""
    chosen_mean, rejected_mean = chosen_mean.float(), rejected_mean.float()
    return (chosen_mean - rejected_mean) - (log1mexp(chosen_mean) - log1mexp(rejected_mean))


def objective(s: shared.Settings, reference: Reference | None = None) -> Objective:
    """NLL of the chosen rows (TRL: every attended token, prompt included, averaged over the batch's
    tokens) minus β · mean log σ(log-odds ratio); summed over pairs as pairs × that batch value."""
    tally = shared.Tally()

    def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        pairs = shared.pair_units(batch)
        logps = sequence_logps(model, batch, nll_rows=pairs)
        chosen, rejected = logps.means.chunk(2)
        log_odds = orpo_log_odds(chosen, rejected)
        ratio = torch.nn.functional.logsigmoid(log_odds)
        nll = logps.nll / max(logps.nll_tokens, 1)  # type: ignore[operator]
        values = shared.pair_metrics(s.beta * chosen, s.beta * rejected, chosen, rejected)
        values.update(
            {
                "nll_loss": (nll * pairs, pairs),
                "log_odds_ratio": (ratio.sum(), pairs),
                "log_odds_chosen": (log_odds.sum(), pairs),
            }
        )
        tally.add(model, values)
        return nll * pairs - s.beta * ratio.sum(), pairs

    return shared.pair_objective(NAME, loss, tally)


encode = shared.encoder(NAME)
build = shared.builder(NAME, objective)
