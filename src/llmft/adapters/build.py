"""Our small adapter schema (config/schema/adapter.py) → a peft model, plus a one-line summary for the user.

Layer-wrapping methods (LoRA and relatives, IA3, VeRA, OFT) and LLaMA-Adapter are built in methods.py;
prompt methods here. What is decided here, and why:
- Modules that start random (a new classification head, a pooler the checkpoint lacked) are trained in full
  and saved with the adapter: without them a reloaded adapter would not reproduce the trained model.
- GPT-2's Conv1D layers store weights transposed; LoRA needs ``fan_in_fan_out=True`` for them, set from
  the layers actually targeted so peft has nothing to warn about.
- Prefix tuning needs the model to accept a KV cache; transformers 5's sequence-classification models do
  not, so that combination is refused up front instead of failing inside peft.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmft.adapters.methods import METHODS, adaption_prompt_config, targeted_config
from llmft.errors import ModelError
from llmft.models.load import new_modules
from llmft.models.targets import head_module_names

if TYPE_CHECKING:  # pragma: no cover
    from peft import PeftConfig
    from torch import nn

    from llmft.config.schema import AdapterConfig

Log = Callable[[str], None]

PEFT_TASK_TYPES: dict[str, str] = {
    "causal_lm": "CAUSAL_LM",
    "seq2seq_lm": "SEQ_2_SEQ_LM",
    "sequence_classification": "SEQ_CLS",
}


@dataclass
class AdapterSummary:
    """What was attached: shown to the user and written to run.json."""

    type: str
    target_modules: list[str]
    trainable_params: int
    total_params: int
    detail: str = ""  # "r=8", "16 virtual tokens"
    modules_to_save: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """E.g. "adapter lora r=8 on [q_proj, v_proj]: 12,345 trainable of 1,234,567 params (1.00%)"."""
        share = 100.0 * self.trainable_params / self.total_params if self.total_params else 0.0
        counts = f"{self.trainable_params:,} trainable of {self.total_params:,} params ({share:.2f}%)"
        if self.type == "none":
            return f"full fine-tune: {counts}"
        head = f"adapter {self.type}" + (f" {self.detail}" if self.detail else "")
        if self.target_modules:
            head += f" on [{', '.join(self.target_modules)}]"
        saved = f"; trained in full: {', '.join(self.modules_to_save)}" if self.modules_to_save else ""
        return f"{head}: {counts}{saved}"


def attach_adapter(
    model: nn.Module,
    adapter: AdapterConfig,
    task: str,
    *,
    log: Log | None = None,
    tokenizer_name_or_path: str | None = None,
) -> tuple[nn.Module, AdapterSummary]:
    """Wrap ``model`` with the configured adapter (or make it fully trainable for ``none``).

    ``tokenizer_name_or_path`` is needed only by prompt tuning initialised from text; it defaults to the
    model's own path.
    """
    if task not in PEFT_TASK_TYPES:
        raise ModelError(
            f"unknown task `{task}`", fix=f"use one of: {', '.join(PEFT_TASK_TYPES)}", where="model.task"
        )
    if adapter.type == "none":
        summary = _full_fine_tune(model)
    else:
        peft_config, targets, detail = _peft_config(model, adapter, task, log, tokenizer_name_or_path)
        model = _get_peft_model(model, peft_config)
        trainable, total = model.get_nb_trainable_parameters()
        summary = AdapterSummary(adapter.type, targets, trainable, total, detail, _saved_modules(model))
    if log is not None:
        log(summary.describe())
    return model, summary


def _saved_modules(model: nn.Module) -> list[str]:
    """Modules peft wrapped to train in full (its own list also names an absent `classifier` or `score`)."""
    from peft.utils import ModulesToSaveWrapper

    base = model.get_base_model()
    return [n for n, m in base.named_modules() if isinstance(m, ModulesToSaveWrapper)]


def _full_fine_tune(model: nn.Module) -> AdapterSummary:
    for param in model.parameters():
        param.requires_grad_(True)
    total = sum(p.numel() for p in model.parameters())
    return AdapterSummary("none", [], total, total)


def _get_peft_model(model: nn.Module, config: PeftConfig) -> nn.Module:
    from peft import get_peft_model

    with warnings.catch_warnings():
        # peft 0.21 reads transformers 5's deprecated `is_gradient_checkpointing`: nothing a user can change.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        try:
            return get_peft_model(model, config)
        except (ValueError, TypeError) as exc:  # TypeError: a layer type the method cannot wrap
            raise ModelError(f"peft cannot attach the adapter: {exc}", where="model.adapter") from exc


def _peft_config(
    model: nn.Module, adapter: AdapterConfig, task: str, log: Log | None, tokenizer: str | None
) -> tuple[PeftConfig, list[str], str]:
    """The peft config for ``adapter``, the layers it wraps (empty for prompt methods) and a short detail."""
    if adapter.type in METHODS:
        saved = modules_to_save(model, task, adapter.modules_to_save)
        return targeted_config(model, adapter, PEFT_TASK_TYPES[task], saved, log)
    if adapter.type == "adaption_prompt":
        return adaption_prompt_config(model, adapter, task), [], f"{adapter.adapter_len} prompt tokens"
    if adapter.type == "prefix_tuning":
        return _prefix_config(model, adapter, task), [], f"{adapter.num_virtual_tokens} virtual tokens"
    if adapter.type == "prompt_tuning":
        return (
            _prompt_config(model, adapter, task, tokenizer),
            [],
            f"{adapter.num_virtual_tokens} virtual tokens",
        )
    raise ModelError(f"unknown adapter type `{adapter.type}`", where="model.adapter.type")


def modules_to_save(model: nn.Module, task: str, extra: list[str] | None) -> list[str]:
    """Modules trained in full and saved with the adapter: the user's, the classification head (peft adds
    only modules named `classifier`/`score`; T5's is `classification_head`), and any module the checkpoint
    had no weights for (BERT's pooler when loading a masked-LM checkpoint)."""
    names = list(extra or [])
    if task == "sequence_classification":
        names += head_module_names(model)
    names += new_modules(model)
    # A module inside another one listed would be wrapped twice (T5's classification_head and its dense).
    return [n for n in dict.fromkeys(names) if not any(n.startswith(other + ".") for other in names)]


def _prefix_config(model: nn.Module, adapter: AdapterConfig, task: str) -> PeftConfig:
    from peft import PrefixTuningConfig

    if task == "sequence_classification":
        raise ModelError(
            "prefix tuning does not work for sequence classification with transformers 5 "
            "(the classification models take no KV cache, which the prefix is passed as)",
            fix="use model.adapter.type: prompt_tuning or lora",
            where="model.adapter.type",
        )
    return PrefixTuningConfig(
        task_type=PEFT_TASK_TYPES[task],
        num_virtual_tokens=adapter.num_virtual_tokens,
        **_prompt_dims(model),
    )


def _prompt_config(model: nn.Module, adapter: AdapterConfig, task: str, tokenizer: str | None) -> PeftConfig:
    from peft import PromptTuningConfig, PromptTuningInit

    kwargs: dict[str, object] = {}
    if adapter.init_text:
        kwargs = {
            "prompt_tuning_init": PromptTuningInit.TEXT,
            "prompt_tuning_init_text": adapter.init_text,
            "tokenizer_name_or_path": tokenizer or getattr(model, "name_or_path", None),
        }
    return PromptTuningConfig(
        task_type=PEFT_TASK_TYPES[task],
        num_virtual_tokens=adapter.num_virtual_tokens,
        modules_to_save=modules_to_save(model, task, None) or None,
        **_prompt_dims(model),
        **kwargs,
    )


def _prompt_dims(model: nn.Module) -> dict[str, int]:
    """Sizes peft needs for prompt methods.

    peft reads `hidden_size`, `num_hidden_layers` and `num_attention_heads` (or aliases) from the config;
    DistilBERT names them `dim`, `n_layers`, `n_heads`. We look in peft's order, plus those names.
    """
    config = model.config.get_text_config()
    dims = {"token_dim": int(model.get_input_embeddings().embedding_dim)}
    for key, names in (
        ("num_layers", ("num_hidden_layers", "num_layers", "n_layer", "n_layers")),
        (
            "num_attention_heads",
            ("num_attention_heads", "n_head", "num_heads", "encoder_attention_heads", "n_heads"),
        ),
    ):
        found = next((getattr(config, n) for n in names if isinstance(getattr(config, n, None), int)), None)
        if found is not None:
            dims[key] = found
    return dims


__all__ = ["PEFT_TASK_TYPES", "AdapterSummary", "attach_adapter", "modules_to_save"]
