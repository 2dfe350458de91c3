"""The trainer's preference parts: batches (chosen and rejected stacked), the reference, the objective."""

from __future__ import annotations

from collections.abc import Callable

import torch

from llmft.config.schema import RunConfig
from llmft.data.build import EncodedData
from llmft.data.pair_collate import PairCollator, UnpairedCollator
from llmft.train.objectives import Objective
from llmft.train.preference import reference as ref
from llmft.train.preference.kto import weight_advice
from llmft.train.preference.objective import NEEDS_REFERENCE, Reference, Settings, preference_objective


def preference_parts(
    config: RunConfig, model: torch.nn.Module, tokenizer: object, encoded: EncodedData
) -> tuple[Objective, Callable[..., dict[str, torch.Tensor]], list[str]]:
    """(objective, collate for training and evaluation, notes for the user) of ``encoded.objective``."""
    kind = encoded.objective
    pad_id = getattr(tokenizer, "pad_token_id", None)
    pad_id = int(pad_id if pad_id is not None else getattr(tokenizer, "eos_token_id", 0) or 0)
    multiple = config.data.tokenization.pad_to_multiple_of
    collate = (UnpairedCollator if kind == "kto" else PairCollator)(pad_id, multiple)
    settings = Settings.of(kind, config.training.preference)
    notes: list[str] = []
    reference: Reference | None = None
    if kind in NEEDS_REFERENCE:
        reference = _reference(config, model, tokenizer, notes)
        if config.training.preference.precompute_reference:
            _precompute(config, model, encoded, collate, reference, notes)
            reference = None  # every batch carries its reference log-probs now
    if kind == "kto":
        train = encoded.examples["train"]
        good = sum(int(e["desirable"]) for e in train)  # type: ignore[call-overload]
        advice = weight_advice(good, len(train) - good, settings.weights)
        if advice:
            notes.append(advice)
    return preference_objective(settings, reference), collate, notes


def _reference(config: RunConfig, model: torch.nn.Module, tokenizer: object, notes: list[str]) -> Reference:
    pref = config.training.preference
    if pref.reference_model:
        from llmft.models.load import load_model

        other = load_model(
            config.model.model_copy(update={"name_or_path": pref.reference_model, "revision": None}),
            "causal_lm",
            tokenizer=tokenizer,  # type: ignore[arg-type]
            token=config.hf_token,
        )
        notes.append(f"reference: {pref.reference_model} (frozen)")
        return ref.frozen(other.to(next(model.parameters()).device))
    if ref.peft_model(model) is not None:
        notes.append("reference: the base model (adapter disabled; no second copy)")
        return ref.adapter_disabled()
    if pref.precompute_reference:
        notes.append("reference: the model before training")
        return ref.frozen_scoring(model)
    notes.append("reference: a frozen copy of the model (precompute_reference: true saves its memory)")
    return ref.frozen_copy(model)


def _precompute(
    config: RunConfig,
    model: torch.nn.Module,
    encoded: EncodedData,
    collate: Callable[..., dict[str, torch.Tensor]],
    reference: Reference,
    notes: list[str],
) -> None:
    identity = {
        "reference": config.training.preference.reference_model or config.model.name_or_path,
        "revision": config.model.revision,
        "weights": ref.weights_fingerprint(model),
        "dtype": str(next(model.parameters()).dtype),
    }
    size = config.training.eval_batch_size or config.training.batch_size
    path, hit = ref.precompute(reference, model, encoded.examples, collate, identity, size)
    notes.append(f"reference log-probs {'read from' if hit else 'precomputed, cached in'} {path}")
