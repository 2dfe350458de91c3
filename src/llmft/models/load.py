"""Load the base model and its config for a task, safely and with errors a user can act on.

This is the entry point the pipeline, preview and validate use; the steps it runs have modules of their own:
- ``local``: a local path must be a saved model, and its weights safetensors unless ``model.allow_pickle``
  is set (a pickle file can run code);
- ``gguf`` and ``gguf_copy``: a GGUF file as the base is read from its header for its config, and loaded
  from the float32 copy it is dequantized into once;
- ``hub``: Hub and file-system failures become ``ModelError`` naming the model and a fix;
- ``precision``: ``dtype: auto`` and the quantised base, whose needs (bitsandbytes and its device) are checked
  before any weights are read;
- ``config_edits`` and ``dropout``: dropout is turned off in the config *before* the model is built, as
  several models (Llama's attention, for one) copy the rate into a plain float at init;
- ``tokenizer``: a tokenizer that can pad.
Names other code imports from here (``load_tokenizer``, ``disable_dropout``, ``zero_config_dropout``,
``quantization_problem``) are re-exported, so ``llmft.models.load`` stays the one place to import from.

torch and transformers are imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.errors import ModelError
from llmft.models.config_edits import prepare_config
from llmft.models.dropout import disable_dropout, zero_config_dropout
from llmft.models.gguf import locate, model_gguf_ref, read_config, read_info
from llmft.models.gguf_copy import prepare_base
from llmft.models.hub import WHERE, hub_error, hub_kwargs, pickle_only_on_hub
from llmft.models.local import check_local_dir, check_weights_format
from llmft.models.precision import device_map, quantization_config, quantization_problem, resolve_dtype
from llmft.models.tokenizer import load_tokenizer

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from llmft.config.schema import ModelConfig

TASKS: tuple[str, ...] = ("causal_lm", "seq2seq_lm", "sequence_classification")

# Attribute set on a loaded model: modules whose weights were not in the checkpoint (a new classification
# head, BERT's pooler when the checkpoint is a masked-LM one). They start random, so an adapter must train and
# save them, or a reloaded model would differ. Read it with ``new_modules(model)``.
NEW_MODULES_ATTR = "llmft_new_modules"


# ------------------------------------------------------------------------------------------ config/task


def load_model_config(cfg: ModelConfig, token: str | None = None) -> PretrainedConfig:
    """Read the model's config only (small, fast), so the task can be chosen before the weights load."""
    from transformers import AutoConfig

    ref = model_gguf_ref(cfg)
    if ref is not None:  # the header alone: no weight is read or dequantized for the config
        return read_config(read_info(locate(ref, cfg.revision, token), ref.key), ref.key)
    check_local_dir(cfg.name_or_path)
    try:
        return AutoConfig.from_pretrained(cfg.name_or_path, **hub_kwargs(cfg, token))
    except OSError as exc:
        raise hub_error(cfg.name_or_path, exc) from exc
    except (ValueError, KeyError) as exc:  # an unknown model_type
        raise ModelError(
            f"transformers cannot read the config of `{cfg.name_or_path}`: {exc}",
            fix="upgrade transformers, or set `model.trust_remote_code: true` if the model ships its own "
            "code and you trust it",
            where=WHERE,
        ) from exc


def infer_task(cfg: ModelConfig, model_config: PretrainedConfig, has_labels: bool) -> tuple[str, str]:
    """The task to train and a short reason the user is shown. An explicit ``model.task`` wins."""
    if cfg.task != "auto":
        return cfg.task, "set by model.task"
    if has_labels:
        return "sequence_classification", "the data has a label column"
    if getattr(model_config, "is_encoder_decoder", False):
        return "seq2seq_lm", f"{model_config.model_type} is an encoder-decoder model"
    return "causal_lm", "no label column and the model is not encoder-decoder"


# ------------------------------------------------------------------------------------------ model


def load_model(
    cfg: ModelConfig,
    task: str,
    *,
    tokenizer: PreTrainedTokenizerBase,
    label_names: list[str] | None = None,
    token: str | None = None,
) -> PreTrainedModel:
    """Load the base model for ``task`` as ``cfg`` says, ready to get an adapter and be trained.

    For classification the head gets ``len(label_names)`` outputs (without names, a classifier checkpoint
    keeps its own) and the tokenizer's pad id, which GPT-2 and Llama need to find the last real token of a
    padded row. Modules the checkpoint had no weights for are listed by ``new_modules(model)``.
    """
    if task not in TASKS:
        raise ModelError(f"unknown task `{task}`", fix=f"use one of: {', '.join(TASKS)}", where="model.task")
    quantization = quantization_config(cfg)  # before anything heavy: qlora may be impossible here
    gguf = prepare_base(cfg, token)
    if gguf is not None:  # a GGUF base loads from its float32 copy, written once (models/gguf_copy.py)
        cfg = gguf[0]
    local = check_local_dir(cfg.name_or_path)
    if local is not None:
        check_weights_format(local, cfg.allow_pickle)
    config = load_model_config(cfg, token)
    _check_task_supported(config, task, cfg.name_or_path)
    prepare_config(config, cfg, task, tokenizer, label_names)
    kwargs = _load_kwargs(cfg, task, token, quantization)
    model = _from_pretrained(_auto_class(task), cfg.name_or_path, config, kwargs)
    if cfg.disable_dropout:
        disable_dropout(model)
    if task in ("causal_lm", "seq2seq_lm"):
        # With the KV cache on, transformers 5.24 was seen to let attention leak across packed documents.
        # Training never needs the cache (and it clashes with gradient checkpointing); generate() turns it
        # back on through the generation config.
        model.config.use_cache = False
    if quantization is not None:
        from peft import prepare_model_for_kbit_training

        # Gradient checkpointing is the training loop's choice (training.gradient_checkpointing), not ours.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model


def new_modules(model: PreTrainedModel) -> list[str]:
    """Modules of ``model`` that the checkpoint had no weights for (randomly initialised at load)."""
    return list(getattr(model, NEW_MODULES_ATTR, ()))


def _auto_class(task: str) -> type:
    """The transformers Auto class that builds a model for ``task``."""
    import transformers

    return {
        "causal_lm": transformers.AutoModelForCausalLM,
        "seq2seq_lm": transformers.AutoModelForSeq2SeqLM,
        "sequence_classification": transformers.AutoModelForSequenceClassification,
    }[task]


def _check_task_supported(config: PretrainedConfig, task: str, name: str) -> None:
    """Fail with the model's own words when transformers has no class for this model and task."""
    if config.__class__.__module__.startswith("transformers_modules"):
        return  # remote code registers its own classes
    auto = _auto_class(task)
    if type(config) in auto._model_mapping:
        return
    hint = {
        "causal_lm": "for an encoder model give the data a label column (classification)",
        "seq2seq_lm": "use an encoder-decoder model (e.g. t5) or set model.task: causal_lm",
        "sequence_classification": "use a model that has a classification head in transformers",
    }[task]
    raise ModelError(
        f"`{name}` ({config.model_type}) cannot be loaded for {task}: transformers has no such class for it",
        fix=f"{hint}, or set model.task explicitly",
        where="model.task",
    )


def _load_kwargs(
    cfg: ModelConfig, task: str, token: str | None, quantization: object | None
) -> dict[str, object]:
    """The ``from_pretrained`` arguments for the weights: where from, dtype, safety, attention, qlora."""
    kwargs = hub_kwargs(cfg, token)
    kwargs["dtype"] = resolve_dtype(cfg.dtype, quantization is not None)
    # A classifier checkpoint trained for other labels gets a new head instead of a shape error. Only for
    # classification: elsewhere a shape mismatch (an embedding of another vocabulary) must stay an error.
    kwargs["ignore_mismatched_sizes"] = task == "sequence_classification"
    if not cfg.allow_pickle:
        kwargs["use_safetensors"] = True
    if cfg.attn_implementation != "auto":
        kwargs["attn_implementation"] = cfg.attn_implementation
    if quantization is not None:
        import torch

        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = device_map(torch.cuda.is_available())
    return kwargs


def _from_pretrained(
    auto: type, name: str, config: PretrainedConfig, kwargs: dict[str, object]
) -> PreTrainedModel:
    """Build the model, record which modules start random, and explain a failure."""
    try:
        model, info = auto.from_pretrained(name, config=config, output_loading_info=True, **kwargs)
    except OSError as exc:
        if pickle_only_on_hub(exc):
            raise ModelError(
                f"`{name}` has only pickle weights on the Hub; pickle files can run code when loaded",
                fix="set `model.allow_pickle: true` if the source is trusted",
                where="model.allow_pickle",
            ) from exc
        raise hub_error(name, exc) from exc
    # Missing weights, and weights of another shape (a classifier trained for other labels), start random.
    keys = set(info.get("missing_keys", ())) | {entry[0] for entry in info.get("mismatched_keys", ())}
    setattr(model, NEW_MODULES_ATTR, tuple(sorted({key.rsplit(".", 1)[0] for key in keys})))
    return model


__all__ = [
    "NEW_MODULES_ATTR",
    "TASKS",
    "disable_dropout",
    "infer_task",
    "load_model",
    "load_model_config",
    "load_tokenizer",
    "new_modules",
    "quantization_problem",
    "zero_config_dropout",
]
