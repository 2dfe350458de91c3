"""Every training objective in one table: its name, the data it trains on, the settings it reads, the model
it trains, whether it needs a reference model, and whether it learns from completions it generates (online
RL, configured by `training.rl`).

The schema's `training.objective` values, `llmft validate`'s objective rules (config/objective_rules.py),
the run's choice for `auto` and the run-time registry (train/objectives/registry.py, which a test holds
to this table) all read it, so a new objective is one row here plus one module there. Torch-free: it is
read by `llmft validate` and `--help`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Data kinds, by what a row of the data holds; `data.preprocessing.format` maps onto them (kind_of).
PAIRS, JUDGED, INSTRUCTIONS, PROMPTS = "pairs", "judged", "instructions", "prompts"
KIND_OF_FORMAT = {"preference": PAIRS, "kto": JUDGED, "prompt": PROMPTS}  # every other: instructions
DESCRIBED = {
    PAIRS: "preference pairs (chosen/rejected)",
    JUDGED: "judged rows (prompt/completion/label)",
    INSTRUCTIONS: "instruction data",
    PROMPTS: "prompt-only rows (a prompt, plus columns for the rewards)",
}
AUTO_WHY = {  # why `auto` picked an objective, by data kind ({format}: the data's format)
    PAIRS: "preference pairs and no training.objective",
    JUDGED: "unpaired judged rows and no training.objective",
    INSTRUCTIONS: "{format} data",
    PROMPTS: "prompt-only rows and no training.objective",
}
PREFERENCE_LENGTHS = ("max_length", "max_prompt_length")  # read by every objective on preference data
REFERENCE_SETTINGS = ("precompute_reference", "reference_model")  # read by every objective with a reference


@dataclass(frozen=True)
class Row:
    """One objective. ``data``: the data kinds it trains on (the first is the one `auto` picks it for when
    ``auto``). ``reads``: its own `training.preference` settings (the lengths and reference settings are
    added by ``settings_read``). ``model_task``: the model task it trains, None for whichever the model
    has. ``variant_of``: the `training.objective` value that trains as this row on a ``model_task`` model
    (sft on a classifier trains as `classification`); such rows are not values of training.objective.
    ``rollouts``: learns from completions it samples and scores as it trains (online RL): reads
    `training.rl`, and its data gives only prompts. ``trains``: llmft's training loop can train it yet;
    a row without is accepted by `llmft validate` and refused by a run (objective_rules.train_refusal)."""

    name: str
    data: tuple[str, ...]
    reads: tuple[str, ...] = ()
    reference: bool = False
    model_task: str | None = "causal_lm"
    auto: bool = False
    variant_of: str | None = None
    rollouts: bool = False
    trains: bool = True

    @property
    def preference(self) -> bool:
        """Trains on preference data only: pair batches (packed as documents with data.packing), its own
        length limits, no sharding."""
        return INSTRUCTIONS not in self.data


ROWS: dict[str, Row] = {
    row.name: row
    for row in (
        Row("sft", (INSTRUCTIONS, PAIRS), model_task=None, auto=True),
        Row("classification", (INSTRUCTIONS,), model_task="sequence_classification", variant_of="sft"),
        Row("seq2seq", (INSTRUCTIONS,), model_task="seq2seq_lm", variant_of="sft"),
        Row("dpo", (PAIRS,), ("beta", "loss_type", "label_smoothing"), reference=True, auto=True),
        Row("simpo", (PAIRS,), ("beta", "gamma")),
        Row("orpo", (PAIRS,), ("beta",)),
        Row("kto", (JUDGED, PAIRS), ("beta", "desirable_weight", "undesirable_weight"), True, auto=True),
        Row("reward", (PAIRS,), model_task="sequence_classification"),
        # Online RL: prompt-only rows, or the prompts of instruction rows (their answers are not read).
        Row("grpo", (PROMPTS, INSTRUCTIONS), rollouts=True, auto=True),
        Row("rloo", (PROMPTS, INSTRUCTIONS), rollouts=True),
    )
}


def names() -> tuple[str, ...]:
    """The values of `training.objective` besides `auto`, in table order."""
    return tuple(name for name, row in ROWS.items() if row.variant_of is None)


def rollout_names() -> tuple[str, ...]:
    """The objectives that read `training.rl` (online RL), in table order."""
    return tuple(name for name, row in ROWS.items() if row.rollouts)


def kind_of(data_format: str) -> str | None:
    """The data kind of a `data.preprocessing.format`; None for `auto` (known only once the data is read)."""
    return None if data_format == "auto" else KIND_OF_FORMAT.get(data_format, INSTRUCTIONS)


def settings_read(name: str) -> tuple[str, ...]:
    """The `training.preference` settings objective ``name`` reads."""
    row = ROWS[name]
    lengths = PREFERENCE_LENGTHS if row.preference else ()
    return (*row.reads, *lengths, *(REFERENCE_SETTINGS if row.reference else ()))


def auto_choice(data_format: str) -> tuple[str, str]:
    """(objective, why) that `training.objective: auto` means for data of ``data_format``."""
    kind = kind_of(data_format) or INSTRUCTIONS
    name = next(row.name for row in ROWS.values() if row.auto and row.data[0] == kind)
    return name, AUTO_WHY[kind].format(format=data_format)


def trained_as(name: str, task: str) -> str:
    """The row that trains objective ``name`` on a ``task`` model: itself, or its variant for that task."""
    variants = (r.name for r in ROWS.values() if r.variant_of == name and r.model_task == task)
    return next(variants, name)
