"""Load a trained model as one plain transformers model: an adapter merged into its base, in full precision.

Merging happens in float32 whatever the final dtype (rounding the base to bf16 and then adding a bf16
LoRA product loses more than rounding the merged sum once). Adapters that add no weights to merge (prefix
and prompt tuning: virtual tokens fed to every layer) and bases stored quantized are refused with the
reason before any weights are read.

torch, transformers and peft are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.errors import ExportError
from llmft.export.source import WHERE, ModelSource

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
# peft methods that learn virtual tokens instead of weight deltas: there is nothing to fold into the base.
PROMPT_LEARNING = ("PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING", "CPT")
# Head weights saved with a classifier adapter; their first dimension is the number of labels.
_HEAD_SUFFIXES = ("score.weight", "classifier.weight", "classifier.out_proj.weight", "out_proj.weight")


def check_mergeable(source: ModelSource) -> None:
    """Refuse prompt-learning adapters: their virtual tokens are inputs, not weights a merge could add."""
    if source.peft_type in PROMPT_LEARNING:
        kind = source.peft_type.lower()
        raise ExportError(
            f"{source.model_dir} holds a {kind} adapter: it learns virtual tokens that are fed to the model "
            "at every call, not weight changes, so there is nothing to merge into the base",
            fix="load it with peft (PeftModel.from_pretrained(base, RUN/model)) to use it, or train a LoRA "
            "adapter (model.adapter.type: lora) to get a merged model",
            where=WHERE,
        )


def load_merged(source: ModelSource, *, dtype: str = "float32") -> PreTrainedModel:
    """The trained model as a plain transformers model in ``dtype`` ("auto": the base's stored dtype)."""
    import torch

    check_mergeable(source)
    weights = source.base or str(source.model_dir)
    config = read_config(source)
    target = resolve_dtype(dtype, config)
    if source.task == "sequence_classification":
        _set_labels(config, source)
    with quiet_transformers():
        # A classifier base with a head for other labels gets a new one (the adapter brings the trained head).
        mismatched_ok = source.is_adapter and source.task == "sequence_classification"
        model = _auto_class(source.task).from_pretrained(
            weights, config=config, dtype=torch.float32, ignore_mismatched_sizes=mismatched_ok
        )
        if source.is_adapter:
            model = _merge_adapter(model, source)
    _use_run_generation_config(model, source.model_dir)
    model.eval()
    return model.to(target)


def _use_run_generation_config(model: PreTrainedModel, model_dir: Path) -> None:
    """The run's generation config (its end-of-turn ids for chat), when training saved one."""
    from transformers import GenerationConfig

    if (model_dir / "generation_config.json").is_file() and model.can_generate():
        model.generation_config = GenerationConfig.from_pretrained(str(model_dir))


def load_tokenizer(source: ModelSource) -> PreTrainedTokenizerBase:
    """The run's own tokenizer (saved beside the adapter), else the base's."""
    from transformers import AutoTokenizer

    where = source.model_dir if has_tokenizer(source.model_dir) else source.base or source.model_dir
    return AutoTokenizer.from_pretrained(str(where))


def has_tokenizer(directory: Path) -> bool:
    return (directory / "tokenizer.json").is_file() or (directory / "tokenizer_config.json").is_file()


def resolve_dtype(dtype: str, config: PretrainedConfig) -> torch.dtype:
    """``dtype`` as a torch dtype; "auto" is the dtype the base is stored in (float32 when unrecorded)."""
    import torch

    if dtype not in DTYPES:
        raise ExportError(f"unknown dtype `{dtype}`", fix=f"use one of: {', '.join(DTYPES)}", where="--dtype")
    if dtype != "auto":
        return getattr(torch, dtype)
    stored = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32"
    name = str(stored).replace("torch.", "")
    return getattr(torch, name) if name in DTYPES else torch.float32


def read_config(source: ModelSource) -> PretrainedConfig:
    """The config of the model the weights come from (the base, for an adapter); refuses a quantized one."""
    from transformers import AutoConfig

    weights = source.base or str(source.model_dir)
    try:
        config = AutoConfig.from_pretrained(weights)
    except (OSError, ValueError) as err:
        raise ExportError(f"cannot read the model config of `{weights}`: {err}", where=WHERE) from None
    quantization = getattr(config, "quantization_config", None)
    if quantization:
        method = quantization.get("quant_method") if isinstance(quantization, dict) else quantization
        raise ExportError(
            f"`{weights}` is stored quantized ({method}): its weights are rounded integers, and adding the "
            "adapter to them and saving would either lose the adapter in the rounding or need the "
            "quantization library's own dequantization on its device",
            fix="merge into the full-precision original of this model (pass it with --base)",
            where=WHERE,
        )
    return config


def _set_labels(config: PretrainedConfig, source: ModelSource) -> None:
    """The head size and label names the classifier was trained with (labels.json, else the saved head)."""
    names = source.label_names
    count = len(names) if names else _saved_head_size(source.model_dir)
    if count:
        names = names or [f"LABEL_{i}" for i in range(count)]
        config.num_labels = count
        config.id2label = dict(enumerate(names))
        config.label2id = {name: i for i, name in enumerate(names)}
    if getattr(config, "pad_token_id", None) is None:
        # GPT-2 and Llama classifiers find the last real token of a row by the pad id.
        config.pad_token_id = load_tokenizer(source).pad_token_id


def _saved_head_size(model_dir: Path) -> int | None:
    """The number of labels of the classification head saved with the adapter, read from its header."""
    from safetensors import safe_open

    file = model_dir / "adapter_model.safetensors"
    if not file.is_file():
        return None
    with safe_open(str(file), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
            if key.endswith(_HEAD_SUFFIXES):
                return int(handle.get_slice(key).get_shape()[0])
    return None


def _merge_adapter(model: PreTrainedModel, source: ModelSource) -> PreTrainedModel:
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, str(source.model_dir))
    except (ValueError, RuntimeError, KeyError) as err:
        raise ExportError(
            f"peft cannot load the adapter in {source.model_dir} onto `{source.base}`: {err}",
            fix="check that --base (or the adapter's base_model_name_or_path) is the model it was trained on",
            where=WHERE,
        ) from None
    return peft_model.merge_and_unload()


def _auto_class(task: str) -> type:
    import transformers

    classes = {
        "causal_lm": transformers.AutoModelForCausalLM,
        "seq2seq_lm": transformers.AutoModelForSeq2SeqLM,
        "sequence_classification": transformers.AutoModelForSequenceClassification,
    }
    if task not in classes:
        raise ExportError(
            f"unknown task `{task}` in the run", fix=f"one of: {', '.join(classes)}", where=WHERE
        )
    return classes[task]


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' load report (a classifier head is "MISSING" from the base; the adapter has it)
    and its progress bars, restoring the user's settings afterwards."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


__all__ = [
    "DTYPES",
    "PROMPT_LEARNING",
    "check_mergeable",
    "load_merged",
    "load_tokenizer",
    "read_config",
    "resolve_dtype",
]
