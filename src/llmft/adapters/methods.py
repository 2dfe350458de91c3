"""Adapter methods that wrap chosen layers (LoRA, IA3, LoHa, LoKr, VeRA, OFT) and LLaMA-Adapter: our schema
→ the peft config, one small function per method family and one table.

What is decided here, and why:
- Targets come from models/targets.py for every layer-wrapping method (presets, "all-linear", names or a
  regex, all checked on the model); IA3's `auto` is peft's own choice, as IA3 must also know which targets
  are feed-forward layers.
- ``fan_in_fan_out`` follows the layers targeted (GPT-2's Conv1D stores weights transposed). LoHa, LoKr and
  OFT cannot wrap Conv1D at all in peft 0.21: refused up front with the methods that can.
- ``adapter.extra`` goes to the peft class as given (its names were checked at validate time); a value peft
  refuses becomes a ModelError naming ``model.adapter.extra``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmft.errors import ModelError
from llmft.models.targets import resolve_target_modules

if TYPE_CHECKING:  # pragma: no cover
    from peft import PeftConfig
    from torch import nn

    from llmft.config.schema import AdapterConfig

Log = Callable[[str], None]
Kwargs = dict[str, object]

# `init` in our schema → peft's init_lora_weights.
LORA_INIT: dict[str, bool | str] = {
    "default": True,
    "gaussian": "gaussian",
    "pissa": "pissa",
    "olora": "olora",
    "orthogonal": "orthogonal",
    "mica": "mica",
}

LORA_INIT_NO_CONV1D = {"olora"}


def _lora(adapter: AdapterConfig) -> Kwargs:
    return {
        "r": adapter.r,
        "lora_alpha": adapter.alpha,
        "lora_dropout": adapter.dropout,
        "bias": adapter.bias,
        "use_dora": adapter.use_dora,
        "use_rslora": adapter.use_rslora,
        "init_lora_weights": LORA_INIT[adapter.init],
        "layers_to_transform": adapter.layers_to_transform,
    }


def _lycoris(adapter: AdapterConfig) -> Kwargs:
    """LoHa and LoKr (the LyCORIS family) share their options."""
    return {
        "r": adapter.r,
        "alpha": adapter.alpha,
        "rank_dropout": adapter.dropout,
        "layers_to_transform": adapter.layers_to_transform,
    }


def _vera(adapter: AdapterConfig) -> Kwargs:
    return {
        "r": adapter.r,
        "vera_dropout": adapter.dropout,
        "layers_to_transform": adapter.layers_to_transform,
    }


def _oft(adapter: AdapterConfig) -> Kwargs:
    return {"r": 0, "oft_block_size": adapter.block_size, "layers_to_transform": adapter.layers_to_transform}


def _ia3(adapter: AdapterConfig) -> Kwargs:
    return {"feedforward_modules": adapter.feedforward_modules}


@dataclass(frozen=True)
class Method:
    """How one method becomes a peft config: its class, its own options, and what it can wrap."""

    config_class: str
    options: Callable[[AdapterConfig], Kwargs]
    conv1d: bool  # can wrap GPT-2's Conv1D layers
    detail: Callable[[AdapterConfig], str]


METHODS: dict[str, Method] = {
    "lora": Method("LoraConfig", _lora, True, lambda a: f"r={a.r}" + (" dora" if a.use_dora else "")),
    "qlora": Method("LoraConfig", _lora, True, lambda a: f"r={a.r} {a.bits}-bit base"),
    "ia3": Method("IA3Config", _ia3, True, lambda a: ""),
    "loha": Method("LoHaConfig", _lycoris, False, lambda a: f"r={a.r}"),
    "lokr": Method("LoKrConfig", _lycoris, False, lambda a: f"r={a.r}"),
    "vera": Method("VeraConfig", _vera, True, lambda a: f"r={a.r}"),
    "oft": Method("OFTConfig", _oft, False, lambda a: f"block_size={a.block_size}"),
}


def targeted_config(
    model: nn.Module, adapter: AdapterConfig, task_type: str, saved: list[str], log: Log | None
) -> tuple[PeftConfig, list[str], str]:
    """The peft config of a layer-wrapping method, the targets it wraps, and a short detail."""
    import peft

    method = METHODS[adapter.type]
    targets = _targets(model, adapter, log)
    kwargs: Kwargs = {"target_modules": targets, **method.options(adapter)}
    if adapter.type in ("ia3", "vera", "oft", "lora", "qlora"):
        kwargs["fan_in_fan_out"] = targets is not None and targets_conv1d(model, targets)
    _check_conv1d(model, adapter, method, targets)
    config = make_config(
        getattr(peft, method.config_class),
        {**kwargs, "modules_to_save": saved or None, "task_type": task_type, **adapter.extra},
    )
    shown = targets if isinstance(targets, list) else [str(targets or "peft's default for the model")]
    return config, shown, method.detail(adapter)


def _check_conv1d(
    model: nn.Module, adapter: AdapterConfig, method: Method, targets: list[str] | str | None
) -> None:
    """What peft 0.21 cannot do on GPT-2's Conv1D layers, refused before peft fails on a shape mismatch."""
    if not targets_conv1d(model, targets):
        return
    if not method.conv1d:
        raise ModelError(
            f"peft's {adapter.type} cannot wrap GPT-2-style Conv1D layers (only nn.Linear and convolutions)",
            fix="use model.adapter.type: lora, ia3 or vera for this model",
            where="model.adapter.type",
        )
    init = getattr(adapter, "init", "default")
    if init in LORA_INIT_NO_CONV1D:
        raise ModelError(
            f"LoRA init `{init}` does not work on GPT-2-style Conv1D layers in peft (stored transposed)",
            fix="use model.adapter.init: pissa, gaussian or default for this model",
            where="model.adapter.init",
        )


def _targets(model: nn.Module, adapter: AdapterConfig, log: Log | None) -> list[str] | str | None:
    """What `target_modules` resolves to; None lets peft choose (IA3's `auto`)."""
    if adapter.type == "ia3" and adapter.target_modules == "auto":
        return None
    return resolve_target_modules(model, adapter.target_modules, log=log)


def targets_conv1d(model: nn.Module, targets: list[str] | str | None) -> bool:
    """True when the targeted layers are transformers' Conv1D (GPT-2), whose weight is stored transposed."""
    import re

    from transformers.pytorch_utils import Conv1D

    if targets is None:
        return False

    def hit(name: str) -> bool:
        if isinstance(targets, str):
            return re.fullmatch(targets, name) is not None
        return any(name == t or name.endswith("." + t) for t in targets)

    matched = [m for n, m in model.named_modules() if n and hit(n)]
    return bool(matched) and any(isinstance(m, Conv1D) for m in matched)


def adaption_prompt_config(model: nn.Module, adapter: AdapterConfig, task: str) -> PeftConfig:
    """LLaMA-Adapter: learned prompts with a zero-initialised gate in the top layers (causal LM only)."""
    from peft import AdaptionPromptConfig
    from peft.tuners.adaption_prompt.config import TRANSFORMERS_MODEL_CONFIG

    model_type = getattr(model.config, "model_type", "")
    if task != "causal_lm" or model_type not in TRANSFORMERS_MODEL_CONFIG:
        raise ModelError(
            f"adaption_prompt (LLaMA-Adapter) works on causal LMs of the types peft knows "
            f"({', '.join(sorted(TRANSFORMERS_MODEL_CONFIG))}); this is {model_type or 'unknown'} for {task}",
            fix="use model.adapter.type: lora (or prompt_tuning)",
            where="model.adapter.type",
        )
    layers = adapter.adapter_layers or model.config.get_text_config().num_hidden_layers
    kwargs = {"adapter_len": adapter.adapter_len, "adapter_layers": layers, "task_type": "CAUSAL_LM"}
    return make_config(AdaptionPromptConfig, {**kwargs, **adapter.extra})


def make_config(cls: type, kwargs: Kwargs) -> PeftConfig:
    """The peft config, with peft's own objections (a bad `extra` value, an odd r) as a ModelError."""
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"peft's {cls.__name__} refused the adapter settings: {exc}",
            fix="check model.adapter (and model.adapter.extra) against peft's documentation of "
            f"{cls.__name__}",
            where="model.adapter",
        ) from exc


__all__ = ["METHODS", "adaption_prompt_config", "make_config", "targeted_config", "targets_conv1d"]
