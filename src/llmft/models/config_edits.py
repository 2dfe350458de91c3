"""Edit a model's config before the model is built from it.

Some choices can only be made in the config: a rate copied into a plain float at init is out of reach once
the model exists, and a classification head's size and label names are read when the head is created. So
``load_model`` reads the config first, passes it through ``prepare_config``, and builds the model from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.models.dropout import zero_config_dropout

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

    from llmft.config.schema import ModelConfig

FUSED_TANH_GELU = "gelu_pytorch_tanh"


def prepare_config(
    config: PretrainedConfig,
    cfg: ModelConfig,
    task: str,
    tokenizer: PreTrainedTokenizerBase,
    label_names: list[str] | None,
) -> None:
    """Edit the config before the model is built from it: dropout, activation, labels and pad id."""
    if cfg.disable_dropout:
        zero_config_dropout(config)
    if getattr(config, "activation_function", None) == "gelu_new":
        # GPT-2's tanh GELU written as eight elementwise ops (~14% of a CPU step); `gelu_pytorch_tanh` is
        # the same function as one fused kernel, and a name plain transformers loads.
        config.activation_function = FUSED_TANH_GELU
    if task == "sequence_classification" and label_names:
        # Without names the checkpoint's own labels stay (a fine-tuned classifier keeps its head).
        config.num_labels = len(label_names)
        config.id2label = dict(enumerate(label_names))
        config.label2id = {name: i for i, name in enumerate(label_names)}
    if tokenizer.pad_token_id is not None:
        config.pad_token_id = tokenizer.pad_token_id


__all__ = ["FUSED_TANH_GELU", "prepare_config"]
