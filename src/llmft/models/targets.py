"""Which layers LoRA adapts: presets per architecture, "all-linear", or names the user gave, checked.

Names follow peft's rule for a list of target modules: a name matches a module whose full dotted name equals
it or ends with ``"." + name``. So a name may carry its parent to narrow the match: GPT-2 uses ``c_proj`` in
both attention and MLP, and ``attn.c_proj`` picks only the attention one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from llmft.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

Log = Callable[[str], None]

# The attention projections of each architecture: the usual LoRA choice (the original paper's q/v plus k/o,
# which costs little more and tends to help). Keys are ``config.model_type``.
AUTO_TARGETS: dict[str, list[str]] = {
    # GPT-2 packs q/k/v into one Conv1D `c_attn`; `attn.c_proj` is the attention output projection. The MLP
    # also has a `c_proj`, which a bare `c_proj` would match as well (peft matches by suffix).
    "gpt2": ["c_attn", "attn.c_proj"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mixtral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi3": ["qkv_proj", "o_proj"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "bert": ["query", "key", "value"],
    "roberta": ["query", "key", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "t5": ["q", "k", "v", "o"],
    "mt5": ["q", "k", "v", "o"],
    "bart": ["q_proj", "k_proj", "v_proj", "out_proj"],
}


# ------------------------------------------------------------------------------------------ discovery


def _is_linear(module: nn.Module) -> bool:
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, nn.Linear | Conv1D)


def head_module_names(model: nn.Module) -> list[str]:
    """Top-level modules outside the base model (LM head, classifier, BERT's `cls`) and the output embeddings.

    Heads are left out of "all-linear": adapting the vocabulary projection costs a lot and tied embeddings
    would break, and a new classification head is trained in full instead (see adapters/build.py).
    """
    prefix = getattr(model, "base_model_prefix", "")
    names = []
    if prefix and hasattr(model, prefix):
        names = [
            n for n, child in model.named_children() if n != prefix and any(True for _ in child.parameters())
        ]
    output = _output_embeddings(model)
    if output is not None:
        names += [n for n, m in model.named_modules() if m is output and n not in names]
    return names


def _output_embeddings(model: nn.Module) -> nn.Module | None:
    getter = getattr(model, "get_output_embeddings", None)
    try:
        return getter() if getter else None
    except (AttributeError, NotImplementedError):
        return None


def _split_linear(model: nn.Module) -> tuple[list[str], list[str]]:
    """Full names of the linear layers in the body and in the heads."""
    heads = head_module_names(model)
    body, head = [], []
    for name, module in model.named_modules():
        if _is_linear(module):
            in_head = any(name == h or name.startswith(h + ".") for h in heads)
            (head if in_head else body).append(name)
    return body, head


def _matches(full_name: str, target: str) -> bool:
    """peft's rule for a list entry: equal, or a dotted suffix."""
    return full_name == target or full_name.endswith("." + target)


def _short_name(full_name: str, avoid: Sequence[str]) -> str:
    """The shortest dotted suffix of ``full_name`` that matches none of ``avoid``, usually its leaf name."""
    parts = full_name.split(".")
    for k in range(1, len(parts) + 1):
        suffix = ".".join(parts[-k:])
        if not any(_matches(other, suffix) for other in avoid):
            return suffix
    return full_name


def linear_module_names(model: nn.Module) -> list[str]:
    """Sorted unique names of the body's ``nn.Linear``/``Conv1D`` layers, heads excluded, as peft targets.

    A name is the leaf name (``q_proj``) unless a head layer shares it: BERT's masked-LM head has a
    ``dense`` layer, so the body's become ``output.dense`` and ``intermediate.dense`` to keep the head out.
    """
    body, head = _split_linear(model)
    return sorted({_short_name(name, head) for name in body})


# ------------------------------------------------------------------------------------------ resolving


def resolve_target_modules(
    model: nn.Module, spec: str | Sequence[str], log: Log | None = None
) -> list[str] | str:
    """What to give peft for ``spec`` ("auto", "all-linear", a list or a regex), checked on the model.

    ``log`` is told what a preset picked; a list or regex the user wrote is returned as given once it
    checks out (a regex, as in peft, must match a module's full dotted name).
    """
    if isinstance(spec, str) and spec not in ("auto", "all-linear"):
        _check_regex(model, spec)
        return spec
    if not isinstance(spec, str):
        if not spec:
            raise ModelError(
                "target_modules is an empty list",
                fix='name some layers, or use "auto"',
                where="model.adapter.target_modules",
            )
        check_target_modules(model, spec)
        return list(spec)
    names, how = _auto_targets(model) if spec == "auto" else (linear_module_names(model), "all linear layers")
    if not names:
        raise ModelError(
            "the model has no linear layers to adapt with LoRA",
            fix="use model.adapter.type: prompt_tuning or none",
            where="model.adapter.target_modules",
        )
    if log is not None:
        log(f"LoRA target modules ({how}): {', '.join(names)}")
    return names


def _check_regex(model: nn.Module, pattern: str) -> None:
    """A regex target must match at least one layer LoRA can wrap (a typo of a preset matches nothing)."""
    import re

    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise ModelError(
            f"target_modules `{pattern}` is not a valid regular expression ({err})",
            fix='use "auto", "all-linear", a list of module names or a valid regex',
            where="model.adapter.target_modules",
        ) from None
    if any(regex.fullmatch(n) and _lora_capable(m) for n, m in model.named_modules() if n):
        return
    close = difflib.get_close_matches(pattern, ["auto", "all-linear"], n=1)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    body, _ = _split_linear(model)
    raise ModelError(
        f"target_modules `{pattern}` is not a preset and, as a regular expression, matches no layer "
        f"LoRA can adapt{hint}",
        fix=f"a regex must match full names such as `{body[0] if body else 'model.layers.0.q_proj'}`; "
        'or use "auto", "all-linear" or a list of module names',
        where="model.adapter.target_modules",
    )


def _auto_targets(model: nn.Module) -> tuple[list[str], str]:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    preset = AUTO_TARGETS.get(model_type or "")
    if preset and not _unmatched(model, preset):
        return list(preset), f"auto, the attention projections of {model_type}"
    reason = "its layers differ from the preset" if preset else "no preset for it"
    return linear_module_names(model), f"auto, all linear layers: {model_type or 'this model'} has {reason}"


def _unmatched(model: nn.Module, names: Sequence[str]) -> list[str]:
    full = [n for n, _ in model.named_modules()]
    return [t for t in names if not any(_matches(f, t) for f in full)]


def check_target_modules(model: nn.Module, names: Sequence[str]) -> None:
    """Raise a ModelError naming the targets that match no layer LoRA can wrap, with the real names."""
    available = linear_module_names(model)
    bad = [(t, _why_bad(model, t)) for t in names]
    bad = [(t, why) for t, why in bad if why]
    if not bad:
        return
    details = []
    for target, why in bad:
        # Suggest only names LoRA can take, the ones the fix lists: a container such as `self_attn` is
        # close to many typos but would only be refused in turn.
        close = difflib.get_close_matches(target, available, n=1)
        details.append(f"`{target}` {why}" + (f" (did you mean `{close[0]}`?)" if close else ""))
    raise ModelError(
        "target_modules: " + "; ".join(details),
        fix=f'use names of the model\'s linear layers: {", ".join(available)}; or "auto" / "all-linear"',
        where="model.adapter.target_modules",
    )


def _why_bad(model: nn.Module, target: str) -> str | None:
    matched = [m for n, m in model.named_modules() if n and _matches(n, target)]
    if not matched:
        return "matches no module in the model"
    if not any(_lora_capable(m) for m in matched):
        kinds = sorted({type(m).__name__ for m in matched})
        return f"matches only {', '.join(kinds)} modules, which LoRA cannot adapt"
    return None


def _lora_capable(module: nn.Module) -> bool:
    """Layer types peft's LoRA wraps; bitsandbytes' 4/8-bit layers subclass nn.Linear."""
    from torch import nn

    types = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MultiheadAttention)
    return isinstance(module, types) or _is_linear(module)


__all__ = [
    "AUTO_TARGETS",
    "check_target_modules",
    "head_module_names",
    "linear_module_names",
    "resolve_target_modules",
]
