"""Turn dropout off everywhere it hides, for fine-tuning with ``model.disable_dropout``.

A rate lives in three places: the config, each ``nn.Dropout``, and plain float attributes that several
models (Llama's attention, for one) copy from the config at init. Zeroing the config *before* the model is
built reaches all of them; ``disable_dropout`` is the after-the-fact version for a model already built.

torch and transformers are imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PretrainedConfig, PreTrainedModel

_DROPOUT_KEY = re.compile(r"(dropout|pdrop|layerdrop)")


def zero_config_dropout(config: PretrainedConfig) -> list[str]:
    """Set every dropout rate in ``config`` (and its sub-configs) to 0; returns the keys changed."""
    from transformers import PretrainedConfig

    changed: list[str] = []
    for key, value in list(vars(config).items()):
        if isinstance(value, PretrainedConfig):
            changed += [f"{key}.{k}" for k in zero_config_dropout(value)]
        elif _DROPOUT_KEY.search(key) and isinstance(value, float | int) and not isinstance(value, bool):
            if value > 0:
                setattr(config, key, 0.0)
                changed.append(key)
    return changed


def disable_dropout(model: PreTrainedModel) -> None:
    """Zero dropout everywhere in a built model: the config, every ``nn.Dropout``, and the float rates some
    modules copy from the config at init (Llama's ``attention_dropout``, BERT's ``dropout_prob``)."""
    from torch import nn

    zero_config_dropout(model.config)
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
        for key, value in list(vars(module).items()):
            if _DROPOUT_KEY.search(key) and type(value) is float and value > 0:
                setattr(module, key, 0.0)


__all__ = ["disable_dropout", "zero_config_dropout"]
