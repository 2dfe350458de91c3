"""The run-time side of config/objectives.py: each table name → the module that trains it.

A new objective is a row in that table and a module here (a test holds the two to the same names and
data kinds); nothing else in the run names objectives. A row that does not train yet (`trains=False`)
has no module; choose.py refuses it before anything is loaded.
"""

from __future__ import annotations

from typing import cast

from llmft.config.objectives import trained_as
from llmft.train.objectives import classification, dpo, grpo, kto, orpo, reward, rloo, seq2seq, sft, simpo
from llmft.train.objectives.base import Context, Objective, ObjectiveModule, Reference
from llmft.train.objectives.pairs import Settings

REGISTRY: dict[str, ObjectiveModule] = {
    m.NAME: cast(ObjectiveModule, m)
    for m in (sft, classification, seq2seq, dpo, simpo, orpo, kto, reward, grpo, rloo)
}


def module_for(objective: str, task: str) -> ObjectiveModule:
    """The module that trains ``objective`` (a training.objective value) on a ``task`` model."""
    return REGISTRY[trained_as(objective, task)]


def build_objective(module: ObjectiveModule, ctx: Context) -> Objective:
    """The module's objective for this run, with its reference model first when it needs one."""
    if module.NEEDS_REFERENCE:
        from llmft.train.preference.setup import prepare_reference

        ctx.reference = prepare_reference(ctx)
    return module.build(ctx)


def preference_objective(settings: Settings, reference: Reference | None = None) -> Objective:
    """The preference objective ``settings.kind`` names, with these settings (no config needed)."""
    return getattr(REGISTRY[settings.kind], "objective")(settings, reference)  # noqa: B009
