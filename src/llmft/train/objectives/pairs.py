"""What the preference objectives share: their settings with TRL's defaults, pair/row encoding and
batches (chosen and rejected stacked), the reference's log-probs, and the metric tally.

Metrics (rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen,
logps/rejected; each module adds its own) are kept as detached per-batch sums, separately for training
and evaluation (by ``model.training``), and averaged per pair when reported: the loop adds them to each
logging step, the trainer to each evaluation (``eval_rewards/accuracies``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from llmft.data.pair_collate import PairCollator, UnpairedCollator, sequence_count
from llmft.errors import ConfigError
from llmft.train.objectives.base import Batch, Context, Objective, Reference, pad_id

if TYPE_CHECKING:
    from llmft.config.schema import DataConfig, PreferenceConfig, TokenizationConfig
    from llmft.data.build import EncodedData, PreparedData

Values = dict[str, tuple[torch.Tensor, int]]
PairLoss = Callable[[torch.nn.Module, Batch], tuple[torch.Tensor, int]]


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
    """Pairs: chosen and rejected sequences are stacked, so half the sequences."""
    return sequence_count(batch) // 2


def pair_objective(name: str, loss: PairLoss, tally: Tally) -> Objective:
    """A pair objective: loss per pair, its tally's metrics, evaluated as preference data."""
    return Objective(name, loss, pair_units, report=tally.report, eval_task="preference")


def collate_pairs(tokenization: TokenizationConfig, tokenizer: object, task: str) -> PairCollator:
    """Chosen rows then rejected rows, padded together."""
    return PairCollator(pad_id(tokenizer), tokenization.pad_to_multiple_of)


def collate_rows(tokenization: TokenizationConfig, tokenizer: object, task: str) -> UnpairedCollator:
    """Judged rows and their mismatched (KL) partners, padded."""
    return UnpairedCollator(pad_id(tokenizer), tokenization.pad_to_multiple_of)


def encode(
    name: str,
    prepared: PreparedData,
    data: DataConfig,
    preference: PreferenceConfig,
    tokenizer: object,
    unpaired: bool = False,
) -> EncodedData:
    """Pairs (or, ``unpaired``, judged rows) of prompt/completion ids, cut to the preference lengths."""
    if data.datasets is not None and data.mixing != "concat":
        raise ConfigError(
            f"objective {name} trains on pairs taken once each, and data.mixing "
            f"`{data.mixing}` would draw other rows each epoch",
            fix="set data.mixing: concat for preference data sets (or train them in one data set)",
        )
    from llmft.data.preference import PairLimits, encode_preference_splits

    pref, tok = preference, data.tokenization
    longest = pref.max_length or tok.max_length
    prompt = pref.max_prompt_length or longest // 2
    if prompt >= longest:
        raise ConfigError(
            f"training.preference.max_prompt_length ({prompt}) leaves no room for the answer in "
            f"max_length {longest}",
            fix=f"set training.preference.max_prompt_length below {longest}",
        )
    limits = PairLimits(longest, prompt, tok.truncation)
    return encode_preference_splits(prepared, data, tokenizer, limits, unpaired=unpaired)


def encoder(name: str, unpaired: bool = False) -> Callable[..., EncodedData]:
    """A module's ``encode``: :func:`encode` for objective ``name``."""

    def encode_for(
        prepared: PreparedData, data: DataConfig, preference: PreferenceConfig, tokenizer: object, task: str
    ) -> EncodedData:
        return encode(name, prepared, data, preference, tokenizer, unpaired)

    return encode_for


def builder(name: str, make: Callable[[Settings, Reference | None], Objective]) -> Callable[..., Objective]:
    """A module's ``build``: ``make`` with the run's training.preference settings and reference."""

    def build(ctx: Context) -> Objective:
        return make(Settings.of(name, ctx.sections.training.preference), ctx.reference)

    return build
