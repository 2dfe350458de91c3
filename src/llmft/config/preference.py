"""Which preference settings each objective reads: one table for `llmft validate` (an explicit
training.objective) and for the run (after `auto` is resolved from the data), so a setting that would do
nothing is refused rather than ignored."""

from __future__ import annotations

from llmft.config.schema import PreferenceConfig

PREFERENCE_OBJECTIVES = ("dpo", "simpo", "orpo", "kto", "reward")
READ_BY: dict[str, tuple[str, ...]] = {
    "beta": ("dpo", "simpo", "orpo", "kto"),
    "loss_type": ("dpo",),
    "label_smoothing": ("dpo",),
    "gamma": ("simpo",),
    "desirable_weight": ("kto",),
    "undesirable_weight": ("kto",),
    "max_length": PREFERENCE_OBJECTIVES,
    "max_prompt_length": PREFERENCE_OBJECTIVES,
    "precompute_reference": ("dpo", "kto"),
    "reference_model": ("dpo", "kto"),
}


def unused_settings(objective: str, cfg: PreferenceConfig) -> list[str]:
    """The training.preference settings that are set but that ``objective`` does not read."""
    return [
        name
        for name, readers in READ_BY.items()
        if objective not in readers and getattr(cfg, name) not in (None, False)
    ]


def unused_message(objective: str, names: list[str]) -> tuple[str, str]:
    """(message, fix) for settings ``objective`` would ignore."""
    readers = sorted({r for n in names for r in READ_BY[n]})
    return (
        f"training.preference.{', '.join(names)} {'is' if len(names) == 1 else 'are'} not read by objective "
        f"`{objective}` (only by {', '.join(readers)})",
        f"delete {', '.join(names)} from training.preference, or set training.objective to one that reads it",
    )
