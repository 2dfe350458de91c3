"""The reference model of a DPO/KTO run: which one the config asks for, and its precomputed log-probs."""

from __future__ import annotations

from collections.abc import Callable

import torch

from llmft.data.build import EncodedData
from llmft.train.objectives.base import Context, Reference
from llmft.train.preference import reference as ref
from llmft.train.sections import TrainSections


def prepare_reference(ctx: Context) -> Reference | None:
    """The reference of a DPO/KTO run (its notes go to ``ctx.notes``); None when precompute_reference
    has put the reference log-probs into every row instead."""
    sections = ctx.sections
    reference = _reference(sections, ctx.model, ctx.tokenizer, ctx.notes)
    if not sections.training.preference.precompute_reference:
        return reference
    _precompute(sections, ctx.model, ctx.encoded, ctx.collate, reference, ctx.notes)
    return None  # every batch carries its reference log-probs now


def _reference(
    sections: TrainSections, model: torch.nn.Module, tokenizer: object, notes: list[str]
) -> Reference:
    pref = sections.training.preference
    if pref.reference_model:
        from llmft.models.load import load_model

        other = load_model(
            sections.model.model_copy(update={"name_or_path": pref.reference_model, "revision": None}),
            "causal_lm",
            tokenizer=tokenizer,  # type: ignore[arg-type]
            token=sections.hf_token,
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
    sections: TrainSections,
    model: torch.nn.Module,
    encoded: EncodedData,
    collate: Callable[..., dict[str, torch.Tensor]],
    reference: Reference,
    notes: list[str],
) -> None:
    identity = {
        "reference": sections.training.preference.reference_model or sections.model.name_or_path,
        "revision": sections.model.revision,
        "weights": ref.weights_fingerprint(model),
        "dtype": str(next(model.parameters()).dtype),
    }
    size = sections.training.eval_batch_size or sections.training.batch_size
    path, hit = ref.precompute(reference, model, encoded.examples, collate, identity, size)
    notes.append(f"reference log-probs {'read from' if hit else 'precomputed, cached in'} {path}")
