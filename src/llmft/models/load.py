"""Load the base model, its config and its tokenizer, safely and with errors a user can act on.

Choices made here, and why:
- Weights load from safetensors only unless ``model.allow_pickle`` is set: a pickle file can run code.
- ``dtype: auto`` means float32 on CPU (transformers 5 defaults to the checkpoint's dtype, often bf16,
  which is slow and imprecise on most CPUs) and the checkpoint's dtype on GPU.
- Dropout is turned off in the config *before* the model is built: several models (Llama's attention,
  for one) copy the rate into a plain float at init, which setting ``nn.Dropout.p`` afterwards would miss.
- Hub and file-system failures become ``ModelError`` naming the model and a fix; qlora's needs (CUDA,
  bitsandbytes) are checked before any weights are read.

torch and transformers are imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.errors import EnvironmentProblem, ModelError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from llmft.config.schema import ModelConfig

TASKS: tuple[str, ...] = ("causal_lm", "seq2seq_lm", "sequence_classification")

# Attribute set on a loaded model: modules whose weights were not in the checkpoint (a new classification
# head, BERT's pooler when the checkpoint is a masked-LM one). They start random, so an adapter must train and
# save them, or a reloaded model would differ. Read it with ``new_modules(model)``.
NEW_MODULES_ATTR = "llmft_new_modules"

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_DROPOUT_KEY = re.compile(r"(dropout|pdrop|layerdrop)")
_WHERE = "model.name_or_path"


# ------------------------------------------------------------------------------------------ hub errors


def _offline_error(name: str) -> ModelError:
    return ModelError(
        f"model `{name}` is not a local directory and is not available offline",
        fix=f"download it first with `huggingface-cli download {name}` while online, "
        "or point model.name_or_path to a local directory",
        where=_WHERE,
    )


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from: transformers wraps hub errors in OSError."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _hub_error(name: str, exc: Exception, what: str = "model") -> ModelError:
    """Turn a failed Hub/file lookup into a ModelError that says which case it is and what to do."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    causes = _causes(exc)
    kinds = tuple(type(c) for c in causes)
    if any(issubclass(k, GatedRepoError) for k in kinds):
        return ModelError(
            f"{what} `{name}` is gated on the Hub and this token has no access",
            fix=f"accept its terms at https://huggingface.co/{name} and set `hf_token` (or HF_TOKEN)",
            where=_WHERE,
        )
    if any(issubclass(k, RevisionNotFoundError) for k in kinds):
        return ModelError(
            f"{what} `{name}` has no such revision",
            fix="check model.revision (a branch, tag or commit)",
            where=_WHERE,
        )
    if any(issubclass(k, RepositoryNotFoundError) for k in kinds):
        return ModelError(
            f"{what} `{name}` is not a local directory and not a model on the Hub",
            fix="check the spelling; for a private model set `hf_token` (or HF_TOKEN)",
            where=_WHERE,
        )
    offline = constants.is_offline_mode() or any(
        issubclass(k, (LocalEntryNotFoundError, OfflineModeIsEnabled)) for k in kinds
    )
    if offline or "couldn't connect" in str(exc):
        return _offline_error(name)
    return ModelError(f"cannot load {what} `{name}`: {exc}", where=_WHERE)


# ------------------------------------------------------------------------------------------ local files


def _looks_like_path(name: str) -> bool:
    """A Hub id is `name` or `org/name`; anything else (or an existing path) is meant as a local path."""
    if Path(name).exists() or name.startswith((".", "/", "~")) or "\\" in name:
        return True
    return name.count("/") > 1


def _check_local_dir(name: str) -> Path | None:
    """The local model directory, None for a Hub id; errors for a path that cannot be a model."""
    if not _looks_like_path(name):
        return None
    path = Path(name).expanduser()
    if not path.exists():
        raise ModelError(
            f"model directory `{name}` does not exist",
            fix="check model.name_or_path (relative paths are relative to the config file)",
            where=_WHERE,
        )
    if not path.is_dir():
        raise ModelError(f"model path `{name}` is a file, not a model directory", where=_WHERE)
    if not (path / "config.json").is_file():
        raise _not_a_model_dir(name, path)
    return path


def _not_a_model_dir(name: str, path: Path) -> ModelError:
    adapter_config = path / "adapter_config.json"
    if adapter_config.is_file():
        import json

        base = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path")
        return ModelError(
            f"`{name}` holds a PEFT adapter, not a full model",
            fix=f"set model.name_or_path to its base model (`{base}`)",
            where=_WHERE,
        )
    files = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "none"
    return ModelError(
        f"`{name}` has no config.json, so it is not a saved model (files there: {files})",
        fix="point model.name_or_path to a directory written by `save_pretrained`",
        where=_WHERE,
    )


def _check_weights_format(path: Path, allow_pickle: bool) -> None:
    """Refuse a folder whose only weights are pickle files, unless the user trusts it."""
    if allow_pickle or any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").is_file():
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        raise ModelError(
            f"`{path}` has only pickle weights ({', '.join(pickles)}); pickle files can run code when loaded",
            fix="convert them to safetensors, or set `model.allow_pickle: true` if the source is trusted",
            where="model.allow_pickle",
        )


def _pickle_only_on_hub(exc: Exception) -> bool:
    return "cannot be loaded with `safetensors`" in str(exc)


# ------------------------------------------------------------------------------------------ config/task


def load_model_config(cfg: ModelConfig, token: str | None = None) -> PretrainedConfig:
    """Read the model's config only (small, fast), so the task can be chosen before the weights load."""
    from transformers import AutoConfig

    _check_local_dir(cfg.name_or_path)
    try:
        return AutoConfig.from_pretrained(cfg.name_or_path, **_hub_kwargs(cfg, token))
    except OSError as exc:
        raise _hub_error(cfg.name_or_path, exc) from exc
    except (ValueError, KeyError) as exc:  # an unknown model_type
        raise ModelError(
            f"transformers cannot read the config of `{cfg.name_or_path}`: {exc}",
            fix="upgrade transformers, or set `model.trust_remote_code: true` if the model ships its own "
            "code and you trust it",
            where=_WHERE,
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


def _hub_kwargs(cfg: ModelConfig, token: str | None) -> dict[str, object]:
    kwargs: dict[str, object] = {"trust_remote_code": cfg.trust_remote_code}
    if cfg.revision:
        kwargs["revision"] = cfg.revision
    if token:
        kwargs["token"] = token
    return kwargs


# ------------------------------------------------------------------------------------------ tokenizer


def load_tokenizer(
    name_or_path: str,
    *,
    trust_remote_code: bool = False,
    revision: str | None = None,
    token: str | None = None,
) -> PreTrainedTokenizerBase:
    """Load a tokenizer that can pad: batching needs a pad token, and many causal LMs ship none.

    The pad token falls back to EOS, then UNK (no new token is added, so the embeddings keep their size).
    Padding is on the right, as training expects; generation code switches to left padding itself.
    """
    from transformers import AutoTokenizer

    _check_local_dir(name_or_path)
    kwargs: dict[str, object] = {"trust_remote_code": trust_remote_code}
    if revision:
        kwargs["revision"] = revision
    if token:
        kwargs["token"] = token
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    except OSError as exc:
        raise _hub_error(name_or_path, exc, what="tokenizer") from exc
    except (ValueError, KeyError) as exc:
        raise ModelError(
            f"cannot load a tokenizer from `{name_or_path}`: {exc}",
            fix="set data.tokenization.tokenizer to a directory or Hub id that has tokenizer files",
            where="data.tokenization.tokenizer",
        ) from exc
    _ensure_pad_token(tokenizer, name_or_path)
    tokenizer.padding_side = "right"
    return tokenizer


def _ensure_pad_token(tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    if tokenizer.pad_token is not None:
        return
    fallback = tokenizer.eos_token or tokenizer.unk_token
    if fallback is None:
        raise ModelError(
            f"tokenizer `{name}` has no pad, EOS or UNK token to pad batches with",
            fix="use a tokenizer that defines one of them (data.tokenization.tokenizer)",
            where="data.tokenization.tokenizer",
        )
    tokenizer.pad_token = fallback


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
    quantization = _quantization_config(cfg)  # before anything heavy: qlora may be impossible here
    local = _check_local_dir(cfg.name_or_path)
    if local is not None:
        _check_weights_format(local, cfg.allow_pickle)
    config = load_model_config(cfg, token)
    _check_task_supported(config, task, cfg.name_or_path)
    _prepare_config(config, cfg, task, tokenizer, label_names)
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


FUSED_TANH_GELU = "gelu_pytorch_tanh"


def _prepare_config(
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


def _load_kwargs(
    cfg: ModelConfig, task: str, token: str | None, quantization: object | None
) -> dict[str, object]:
    kwargs = _hub_kwargs(cfg, token)
    kwargs["dtype"] = _resolve_dtype(cfg.dtype, quantization is not None)
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
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", torch.cuda.current_device()))}
    return kwargs


def _from_pretrained(
    auto: type, name: str, config: PretrainedConfig, kwargs: dict[str, object]
) -> PreTrainedModel:
    try:
        model, info = auto.from_pretrained(name, config=config, output_loading_info=True, **kwargs)
    except OSError as exc:
        if _pickle_only_on_hub(exc):
            raise ModelError(
                f"`{name}` has only pickle weights on the Hub; pickle files can run code when loaded",
                fix="set `model.allow_pickle: true` if the source is trusted",
                where="model.allow_pickle",
            ) from exc
        raise _hub_error(name, exc) from exc
    # Missing weights, and weights of another shape (a classifier trained for other labels), start random.
    keys = set(info.get("missing_keys", ())) | {entry[0] for entry in info.get("mismatched_keys", ())}
    setattr(model, NEW_MODULES_ATTR, tuple(sorted({key.rsplit(".", 1)[0] for key in keys})))
    return model


def _resolve_dtype(name: str, quantized: bool) -> torch.dtype | str:
    """``auto``: float32 on CPU, the checkpoint's dtype on GPU; with qlora, the compute dtype."""
    import torch

    if name != "auto":
        return getattr(torch, name)
    if quantized:
        return _compute_dtype()
    return "auto" if torch.cuda.is_available() else torch.float32


def _compute_dtype() -> torch.dtype:
    import torch

    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


# ------------------------------------------------------------------------------------------ dropout


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


# ------------------------------------------------------------------------------------------ qlora


def qlora_problem(cuda_available: bool, has_bitsandbytes: bool) -> EnvironmentProblem | None:
    """Why qlora cannot run on this machine, or None. Kept pure so each case is testable anywhere."""
    if not cuda_available:
        return EnvironmentProblem(
            "qlora needs a CUDA GPU (bitsandbytes 4/8-bit weights), and this machine has none",
            fix="use `model.adapter.type: lora` on this machine",
            where="model.adapter.type",
        )
    if not has_bitsandbytes:
        return EnvironmentProblem(
            "qlora needs the bitsandbytes package, which is not installed",
            fix="run `pip install bitsandbytes`, or use `model.adapter.type: lora`",
            where="model.adapter.type",
        )
    return None


def _quantization_config(cfg: ModelConfig) -> object | None:
    """A BitsAndBytesConfig for qlora (NF4, double quantisation), None for other adapters."""
    if cfg.adapter.type != "qlora":
        return None
    import torch

    problem = qlora_problem(torch.cuda.is_available(), importlib.util.find_spec("bitsandbytes") is not None)
    if problem is not None:
        raise problem
    from transformers import BitsAndBytesConfig

    if cfg.adapter.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=_compute_dtype(),
        bnb_4bit_use_double_quant=True,
    )


__all__ = [
    "NEW_MODULES_ATTR",
    "TASKS",
    "disable_dropout",
    "infer_task",
    "load_model",
    "load_model_config",
    "load_tokenizer",
    "new_modules",
    "qlora_problem",
    "zero_config_dropout",
]
