"""Optimizer names: llmft's own, and every Hugging Face ``TrainingArguments.optim`` name, in ONE table.

A Hugging Face name that means what llmft already runs is read as llmft's name (with a notice, by
config/legacy.py); one llmft does not implement is refused with the list of what it does. The table is
checked against ``transformers.training_args.OptimizerNames`` by a test, so a new name cannot go unseen.
"""

from __future__ import annotations

from typing import NamedTuple


class OptimizerName(NamedTuple):
    """What a name stands for in llmft: the optimizer it runs (None: not implemented), and why."""

    runs: str | None
    note: str


# llmft's own names: what `training.optimizer` accepts.
IMPLEMENTED: dict[str, str] = {
    "adamw": "torch.optim.AdamW (fused kernel on GPU, foreach on CPU)",
    "sgd": "torch.optim.SGD with momentum = adam_beta1",
    "adafactor": (
        "transformers' Adafactor at the schedule's learning rate (factored second moment: less memory)"
    ),
    "adamw_8bit": "bitsandbytes AdamW8bit: AdamW with 8-bit optimizer state (needs bitsandbytes; CPU or GPU)",
}

_NOT_HERE = "not implemented in llmft"
_PAGED = "paging moves optimizer state to CPU memory when the GPU runs out; llmft does not page"

OPTIMIZER_NAMES: dict[str, OptimizerName] = {
    **{name: OptimizerName(name, note) for name, note in IMPLEMENTED.items()},
    # Hugging Face names that mean what llmft runs
    "adamw_torch": OptimizerName("adamw", "torch's AdamW, which llmft uses"),
    "adamw_torch_fused": OptimizerName("adamw", "llmft uses the fused AdamW kernel on GPU already"),
    "adamw_hf": OptimizerName("adamw", "the same AdamW update as torch's"),
    "adam": OptimizerName("adamw", "AdamW is Adam with decoupled weight decay; the same when it is 0"),
    "adamw_bnb_8bit": OptimizerName("adamw_8bit", "bitsandbytes AdamW8bit"),
    # Hugging Face names llmft does not implement
    "paged_adamw_8bit": OptimizerName(None, f"{_PAGED}; use adamw_8bit"),
    "paged_adamw_32bit": OptimizerName(None, f"{_PAGED}; use adamw"),
    "adamw_torch_xla": OptimizerName(None, "TPU (XLA) only"),
    "adamw_torch_npu_fused": OptimizerName(None, "Ascend NPU only"),
    "adamw_apex_fused": OptimizerName(None, "needs NVIDIA apex; llmft's AdamW is fused on GPU already"),
    "adamw_anyprecision": OptimizerName(None, _NOT_HERE),
    "adamw_torch_4bit": OptimizerName(None, f"torchao low-bit AdamW, {_NOT_HERE}; use adamw_8bit"),
    "adamw_torch_8bit": OptimizerName(None, f"torchao 8-bit AdamW, {_NOT_HERE}; use adamw_8bit"),
    "ademamix": OptimizerName(None, _NOT_HERE),
    "ademamix_8bit": OptimizerName(None, _NOT_HERE),
    "paged_ademamix_32bit": OptimizerName(None, _NOT_HERE),
    "paged_ademamix_8bit": OptimizerName(None, _NOT_HERE),
    "adagrad": OptimizerName(None, _NOT_HERE),
    "lion_8bit": OptimizerName(None, _NOT_HERE),
    "lion_32bit": OptimizerName(None, _NOT_HERE),
    "paged_lion_32bit": OptimizerName(None, _NOT_HERE),
    "paged_lion_8bit": OptimizerName(None, _NOT_HERE),
    "rmsprop": OptimizerName(None, _NOT_HERE),
    "rmsprop_bnb": OptimizerName(None, _NOT_HERE),
    "rmsprop_bnb_8bit": OptimizerName(None, _NOT_HERE),
    "rmsprop_bnb_32bit": OptimizerName(None, _NOT_HERE),
    "galore_adamw": OptimizerName(None, _NOT_HERE),
    "galore_adamw_8bit": OptimizerName(None, _NOT_HERE),
    "galore_adafactor": OptimizerName(None, _NOT_HERE),
    "galore_adamw_layerwise": OptimizerName(None, _NOT_HERE),
    "galore_adamw_8bit_layerwise": OptimizerName(None, _NOT_HERE),
    "galore_adafactor_layerwise": OptimizerName(None, _NOT_HERE),
    "lomo": OptimizerName(None, _NOT_HERE),
    "adalomo": OptimizerName(None, _NOT_HERE),
    "grokadamw": OptimizerName(None, _NOT_HERE),
    "schedule_free_radam": OptimizerName(None, _NOT_HERE),
    "schedule_free_adamw": OptimizerName(None, _NOT_HERE),
    "schedule_free_sgd": OptimizerName(None, _NOT_HERE),
    "apollo_adamw": OptimizerName(None, _NOT_HERE),
    "apollo_adamw_layerwise": OptimizerName(None, _NOT_HERE),
    "stable_adamw": OptimizerName(None, _NOT_HERE),
}

# Synonyms read as an implemented optimizer (did-you-mean and the value notices use these).
SYNONYMS: dict[str, str] = {
    name: entry.runs for name, entry in OPTIMIZER_NAMES.items() if entry.runs and entry.runs != name
}


def lookup(name: object) -> OptimizerName | None:
    """The table's entry for a name as written (case-insensitive), or None when it is no known name."""
    return OPTIMIZER_NAMES.get(name.lower()) if isinstance(name, str) else None


def not_implemented(name: str) -> tuple[str, str]:
    """(message, fix) for a known optimizer name llmft does not run."""
    entry = OPTIMIZER_NAMES[name.lower()]
    return (
        f"optimizer `{name}` is not implemented in llmft ({entry.note})"
        if entry.note != _NOT_HERE
        else f"optimizer `{name}` is not implemented in llmft",
        f"use one of: {', '.join(IMPLEMENTED)} (Hugging Face names read as these: {', '.join(SYNONYMS)})",
    )
