"""The field names of peft's config classes, so ``adapter.extra`` is checked by ``llmft validate`` without
importing peft (which imports torch).

``PEFT_FIELDS`` lists each class's own fields (not PeftConfig's: task type, base model and such are llmft's
to set) as in peft ``TABLE_PEFT``, and ``ADDED_IN`` the release that brought each field newer than the oldest
peft we support, so a field the installed peft lacks is refused with the version it needs instead of
failing inside peft. tests/unit/config/test_peft_fields.py compares the table at the installed version with
the installed classes, so a peft upgrade that adds or drops a field fails a test instead of drifting (and
pyproject caps peft below the first release the table has not been checked against). ``OWN`` names the
fields our schema sets under its own names, and ``SET_BY_LLMFT`` those llmft decides from the model.
"""

from __future__ import annotations

import difflib
from importlib import metadata

TABLE_PEFT: tuple[int, int] = (0, 22)
"""The newest peft release whose classes the table was compared with."""

PEFT_CLASSES: dict[str, str] = {
    "lora": "LoraConfig",
    "qlora": "LoraConfig",
    "ia3": "IA3Config",
    "loha": "LoHaConfig",
    "lokr": "LoKrConfig",
    "vera": "VeraConfig",
    "oft": "OFTConfig",
    "adaption_prompt": "AdaptionPromptConfig",
}

PEFT_FIELDS: dict[str, tuple[str, ...]] = {
    "lora": (
        "alora_invocation_tokens",
        "alpha_pattern",
        "arrow_config",
        "bias",
        "corda_config",
        "ensure_weight_tying",
        "eva_config",
        "exclude_modules",
        "fan_in_fan_out",
        "init_lora_weights",
        "kasa_config",
        "layer_replication",
        "layers_pattern",
        "layers_to_transform",
        "loftq_config",
        "lora_alpha",
        "lora_bias",
        "lora_dropout",
        "lora_ga_config",
        "megatron_config",
        "megatron_core",
        "modules_to_save",
        "monteclora_config",
        "qalora_group_size",
        "r",
        "rank_pattern",
        "runtime_config",
        "target_modules",
        "target_parameters",
        "trainable_token_indices",
        "use_bdlora",
        "use_dora",
        "use_qalora",
        "use_rslora",
        "velora_config",
        "astra_config",
    ),
    "ia3": (
        "exclude_modules",
        "fan_in_fan_out",
        "feedforward_modules",
        "init_ia3_weights",
        "modules_to_save",
        "target_modules",
    ),
    "loha": (
        "alpha",
        "alpha_pattern",
        "exclude_modules",
        "init_weights",
        "layers_pattern",
        "layers_to_transform",
        "module_dropout",
        "modules_to_save",
        "r",
        "rank_dropout",
        "rank_pattern",
        "target_modules",
        "use_effective_conv2d",
    ),
    "lokr": (
        "alpha",
        "alpha_pattern",
        "decompose_both",
        "decompose_factor",
        "exclude_modules",
        "init_weights",
        "layers_pattern",
        "layers_to_transform",
        "module_dropout",
        "modules_to_save",
        "r",
        "rank_dropout",
        "rank_dropout_scale",
        "rank_pattern",
        "target_modules",
        "use_effective_conv2d",
    ),
    "vera": (
        "bias",
        "d_initial",
        "fan_in_fan_out",
        "init_weights",
        "layers_pattern",
        "layers_to_transform",
        "modules_to_save",
        "projection_prng_key",
        "r",
        "save_projection",
        "target_modules",
        "vera_dropout",
    ),
    "oft": (
        "bias",
        "block_share",
        "coft",
        "eps",
        "exclude_modules",
        "fan_in_fan_out",
        "init_weights",
        "layers_pattern",
        "layers_to_transform",
        "module_dropout",
        "modules_to_save",
        "num_cayley_neumann_terms",
        "oft_block_size",
        "r",
        "target_modules",
        "use_cayley_neumann",
    ),
    "adaption_prompt": (
        "adapter_layers",
        "adapter_len",
        "target_modules",
    ),
}
PEFT_FIELDS["qlora"] = PEFT_FIELDS["lora"]

ADDED_IN: dict[str, tuple[int, int]] = {
    "lora_ga_config": (0, 19),
    "use_bdlora": (0, 19),
    "monteclora_config": (0, 20),
    "velora_config": (0, 20),
    "kasa_config": (0, 21),
    "astra_config": (0, 22),
}
"""LoRA fields newer than peft 0.18 (the oldest release pyproject allows); none was removed up to 0.22."""

_LORA_OWN = {
    "r": "r",
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "target_modules": "target_modules",
    "bias": "bias",
    "modules_to_save": "modules_to_save",
    "use_dora": "use_dora",
    "use_rslora": "use_rslora",
    "init_lora_weights": "init",
    "layers_to_transform": "layers_to_transform",
}
_LYCORIS_OWN = {
    "r": "r",
    "alpha": "alpha",
    "rank_dropout": "dropout",
    "target_modules": "target_modules",
    "layers_to_transform": "layers_to_transform",
    "modules_to_save": "modules_to_save",
}
OWN: dict[str, dict[str, str]] = {
    "lora": _LORA_OWN,
    "qlora": _LORA_OWN,
    "ia3": {k: k for k in ("target_modules", "feedforward_modules", "modules_to_save")},
    "loha": _LYCORIS_OWN,
    "lokr": _LYCORIS_OWN,
    "vera": {
        "r": "r",
        "vera_dropout": "dropout",
        **{k: k for k in ("target_modules", "layers_to_transform", "modules_to_save")},
    },
    "oft": {
        "oft_block_size": "block_size",
        **{k: k for k in ("target_modules", "layers_to_transform", "modules_to_save")},
    },
    "adaption_prompt": {"adapter_len": "adapter_len", "adapter_layers": "adapter_layers"},
}
SET_BY_LLMFT: dict[str, str] = {
    "fan_in_fan_out": "from the layer type: GPT-2's Conv1D stores its weights transposed",
}
SET_BY_LLMFT_FOR: dict[str, dict[str, str]] = {
    "oft": {"r": "to 0: OFT is sized by `block_size`"},
}


def installed_peft() -> tuple[int, int] | None:
    """(major, minor) of the installed peft, read from its metadata so that validating imports no torch."""
    try:
        major, minor = metadata.version("peft").split(".")[:2]
        return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def fields_at(method: str, version: tuple[int, int] | None) -> tuple[str, ...]:
    """The fields of ``method``'s peft class in release ``version`` (the whole table when unknown)."""
    if version is None:
        return PEFT_FIELDS[method]
    return tuple(f for f in PEFT_FIELDS[method] if ADDED_IN.get(f, (0, 0)) <= version)


def _version_problem(key: str, version: tuple[int, int] | None) -> tuple[str, str] | None:
    needed = ADDED_IN.get(key)
    if needed is None or version is None or version >= needed:
        return None
    need, have = ".".join(map(str, needed)), ".".join(map(str, version))
    return (
        f"extra.{key}: needs peft >= {need} (installed: {have})",
        f"pip install 'peft>={need}', or remove `{key}` from extra",
    )


def extra_field_problem(
    method: str, key: str, version: tuple[int, int] | None = None
) -> tuple[str, str] | None:
    """(message, fix) when ``key`` may not go in ``model.adapter.extra`` for ``method``; None when it may.
    ``version``: the peft release to check against (default: the installed one)."""
    if method not in PEFT_FIELDS:
        return (f"extra: adapter type `{method}` takes no extra peft fields", "remove `extra`")
    if key in PEFT_FIELDS[method]:
        version_problem = _version_problem(key, version or installed_peft())
        if version_problem is not None:
            return version_problem
    own = OWN[method].get(key)
    if own is not None:
        return (
            f"extra.{key}: set through `model.adapter.{own}`",
            f"write `{own}:` under model.adapter instead",
        )
    why = SET_BY_LLMFT_FOR.get(method, {}).get(key) or SET_BY_LLMFT.get(key)
    if why is not None and key in PEFT_FIELDS[method]:
        return (f"extra.{key}: llmft sets it itself ({why})", f"remove `{key}` from extra")
    if key in PEFT_FIELDS[method]:
        return None
    allowed = sorted(f for f in PEFT_FIELDS[method] if f not in OWN[method] and f not in SET_BY_LLMFT)
    close = difflib.get_close_matches(key, [*allowed, *OWN[method]], n=1)
    cls = PEFT_CLASSES[method]
    if close and close[0] in OWN[method]:
        ours = OWN[method][close[0]]
        return (
            f"extra.{key}: not a field of peft's {cls} (did you mean `{close[0]}`? set it as `{ours}`)",
            f"remove `{key}` from extra and write `{ours}:` under model.adapter",
        )
    if close:
        return (
            f"extra.{key}: not a field of peft's {cls} (did you mean `{close[0]}`?)",
            f"rename `{key}` to `{close[0]}`",
        )
    return (
        f"extra.{key}: not a field of peft's {cls}",
        f"remove `{key}` (fields it takes: {', '.join(allowed)})",
    )
