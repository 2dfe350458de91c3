"""Which objective a run trains with, decided once the data format is known, and the examples for it.

`auto` means dpo for preference pairs, kto for unpaired judged rows, sft for everything else (printed).
Combinations that cannot work (pairs objectives on instruction data, packing pairs, a reward model on a
language-model task) are refused here with the fix, before the model is loaded.
"""

from __future__ import annotations

from llmft.config.preference import unused_message, unused_settings
from llmft.config.schema import RunConfig
from llmft.data.build import EncodedData, PreparedData
from llmft.errors import ConfigError

PAIR_OBJECTIVES = ("dpo", "simpo", "orpo", "reward")


def choose_objective(config: RunConfig, data_format: str) -> tuple[str, str]:
    """(objective, why) for this config and data format; raises ConfigError for impossible pairings."""
    chosen = config.training.objective
    if chosen != "auto":
        objective, why = chosen, "set by training.objective"
    elif data_format == "preference":
        objective, why = "dpo", "preference pairs and no training.objective"
    elif data_format == "kto":
        objective, why = "kto", "unpaired judged rows and no training.objective"
    else:
        objective, why = "sft", f"{data_format} data"
    _check_fits(config, objective, data_format)
    return objective, why


def _check_fits(config: RunConfig, objective: str, data_format: str) -> None:
    if objective in PAIR_OBJECTIVES and data_format != "preference":
        raise ConfigError(
            f"training.objective {objective} needs preference pairs (chosen/rejected), "
            f"but the data is {data_format}",
            fix="use data with chosen and rejected columns, or set training.objective: sft",
        )
    if objective == "kto" and data_format not in ("preference", "kto"):
        raise ConfigError(
            "training.objective kto needs judged rows (prompt/completion/label) or pairs, "
            f"but the data is {data_format}",
            fix="use data with a boolean label per completion, or set training.objective: sft",
        )
    if objective == "sft" and data_format == "kto":
        raise ConfigError(
            "training.objective sft on judged rows would also learn the undesirable completions",
            fix="set training.objective: kto (or auto)",
        )
    if objective != "sft" and config.data.packing:
        raise ConfigError(
            f"data.packing does not apply to objective {objective} (pairs are scored row by row)",
            fix="set data.packing: false",
        )
    unused = unused_settings(objective, config.training.preference)
    if unused:
        message, fix = unused_message(objective, unused)
        raise ConfigError(message, fix=fix)


def task_for(config: RunConfig, objective: str, task: str, why: str) -> tuple[str, str]:
    """The model's task: a one-output classification head for reward models, a causal LM for the rest."""
    if objective == "reward":
        if config.model.task not in ("auto", "sequence_classification"):
            raise ConfigError(
                f"objective reward trains a scoring head, but model.task is {config.model.task}",
                fix="set model.task: auto (or sequence_classification)",
            )
        return "sequence_classification", "objective reward: one score per sequence"
    if objective != "sft" and task != "causal_lm":
        raise ConfigError(
            f"objective {objective} trains a causal language model, but the task is {task} ({why})",
            fix="use a decoder-only model and model.task: auto (or causal_lm)",
        )
    return task, why


def encode_for_objective(
    objective: str, prepared: PreparedData, config: RunConfig, tokenizer: object, task: str
) -> EncodedData:
    """SFT examples as before; for preference objectives, pairs (or judged rows) of prompt/completion ids."""
    from llmft.data.build import encode_splits

    if objective == "sft":
        return encode_splits(prepared, config.data, tokenizer, task)
    if config.data.datasets is not None and config.data.mixing != "concat":
        raise ConfigError(
            f"objective {objective} trains on pairs taken once each, and data.mixing "
            f"`{config.data.mixing}` would draw other rows each epoch",
            fix="set data.mixing: concat for preference data sets (or train them in one data set)",
        )
    from llmft.data.preference import PairLimits, encode_preference_splits

    pref, tok = config.training.preference, config.data.tokenization
    longest = pref.max_length or tok.max_length
    prompt = pref.max_prompt_length or longest // 2
    if prompt >= longest:
        raise ConfigError(
            f"training.preference.max_prompt_length ({prompt}) leaves no room for the answer in "
            f"max_length {longest}",
            fix=f"set training.preference.max_prompt_length below {longest}",
        )
    limits = PairLimits(longest, prompt, tok.truncation)
    encoded = encode_preference_splits(prepared, config.data, tokenizer, limits, unpaired=objective == "kto")
    encoded.objective = objective
    if objective == "reward":
        encoded.label_names = ["reward"]
    return encoded
