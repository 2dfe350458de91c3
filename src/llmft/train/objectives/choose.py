"""Which objective a run trains with, decided once the data format is known, and the examples for it.

`auto` and what each objective refuses come from the table (config/objectives.py) and its rules
(config/objective_rules.py), the same ones `llmft validate` applies to an explicit training.objective;
refusals are raised here with the fix, before the model is loaded; so is an objective the table has but
no loop can train yet (online RL: grpo, rloo).
"""

from __future__ import annotations

from llmft.config.objective_rules import (
    Refusal,
    data_refusal,
    task_refusal,
    train_refusal,
    unused_message,
    unused_settings,
)
from llmft.config.objectives import ROWS, auto_choice
from llmft.config.schema import DataConfig, ModelConfig, PreferenceConfig, TrainingConfig
from llmft.data.build import EncodedData, PreparedData
from llmft.errors import ConfigError


def choose_objective(training: TrainingConfig, data_format: str) -> tuple[str, str]:
    """(objective, why) for these sections and data format; raises ConfigError for impossible pairings."""
    chosen = training.objective
    objective, why = (chosen, "set by training.objective") if chosen != "auto" else auto_choice(data_format)
    refuse_untrained(objective)
    _refuse(data_refusal(objective, data_format, declared=False))
    unused = unused_settings(objective, training.preference)
    if unused:
        _refuse(unused_message(objective, unused))
    return objective, why


def refuse_untrained(objective: str) -> None:
    """Objective ``objective`` in the table but no loop trains it yet (grpo, rloo: online RL) stops the run
    with the reason; training something else, or nothing, in its place would be a silent no-op. A run asks
    before making its directory; choose_objective asks again for every other caller (preview)."""
    if objective != "auto":
        _refuse(train_refusal(objective))


def _refuse(refusal: Refusal, why: str = "") -> None:
    if refusal:
        message, fix = refusal
        raise ConfigError(message + why, fix=fix)


def task_for(model: ModelConfig, objective: str, task: str, why: str) -> tuple[str, str]:
    """The model's task for ``objective``. A head task (reward: one score per sequence) is put on any
    model, so only an explicit model.task can contradict it; other tasks must be the model's own."""
    needed = ROWS[objective].model_task
    if needed == "sequence_classification":
        _refuse(task_refusal(objective, model.task))
        return needed, f"objective {objective}: one score per sequence"
    _refuse(task_refusal(objective, task), f" ({why})")
    return task, why


def encode_for_objective(
    objective: str,
    prepared: PreparedData,
    data: DataConfig,
    preference: PreferenceConfig,
    tokenizer: object,
    task: str,
) -> EncodedData:
    """The rows encoded as the objective's module trains on them (sft: for the task; pairs; judged rows),
    marked with the objective, which picks the module again when the trainer is built."""
    from llmft.train.objectives.registry import module_for

    encoded = module_for(objective, task).encode(prepared, data, preference, tokenizer, task)
    encoded.objective = objective
    return encoded
