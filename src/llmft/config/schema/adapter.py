"""`model.adapter`: one section per adapter method, told apart by `type` (`lora` when absent)."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Discriminator, Field, PositiveInt, Tag, model_validator

from llmft.config.peft_fields import extra_field_problem
from llmft.config.schema.base import Fraction, PositiveFloat, RuleError, Section

REGEX_CHARS = re.compile(r"[.*+?\\[\]()|^$]")


def _check_target_modules(value: object) -> object:
    """A string other than the presets is a regular expression (peft matches it against full module names);
    one without any regex character is taken for a typo of a preset or a lone module name."""
    if not isinstance(value, str) or value in ("auto", "all-linear"):
        return value
    if not REGEX_CHARS.search(value):
        close = difflib.get_close_matches(value, ["auto", "all-linear"], n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"for one module name write a list: [{value}]"
        raise ValueError(
            "expected `auto`, `all-linear`, a list of module names or a regular expression; "
            f"got `{value}` ({hint})"
        )
    try:
        re.compile(value)
    except re.error as err:
        raise ValueError(f"`{value}` is not a valid regular expression ({err})") from None
    return value


TargetModules = Annotated[
    Literal["auto", "all-linear"] | list[str] | str, AfterValidator(_check_target_modules)
]
TARGETS_HELP = (
    "Layers to adapt: `auto` (the attention projections of the architecture), `all-linear`, a list of "
    "module names (`[q_proj, v_proj]`, or `attn.c_proj` to narrow by parent), or a regular expression that "
    "must match a module's full name (`.*\\.layers\\.[0-3]\\..*(q|v)_proj`)."
)
LoraInit = Literal["default", "gaussian", "pissa", "olora", "orthogonal", "mica"]


def _extra_field() -> dict[str, object]:
    return Field(  # type: ignore[no-any-return]
        default_factory=dict,
        description="Further fields of the method's peft config class, passed as given (e.g. "
        "`{rank_pattern: {q_proj: 16}}` for LoRA); names are checked against peft's class at validate time.",
    )


class _PeftExtra(Section):
    """Adapters with ``extra``: further fields of the method's peft config class, checked by name against
    peft's own (config/peft_fields.py). Each subclass declares ``extra`` last, for the docs' order."""

    @model_validator(mode="after")
    def _extra_fields(self) -> _PeftExtra:
        for key in getattr(self, "extra", {}):
            problem = extra_field_problem(str(getattr(self, "type", "")), key)
            if problem is not None:
                raise RuleError(*problem)
        return self


class LoraAdapter(_PeftExtra):
    type: Literal["lora"] = "lora"
    r: PositiveInt = Field(8, description="LoRA rank.")
    alpha: PositiveFloat = Field(16, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: Fraction = Field(0.0, description="Dropout on the LoRA input; 0 is fastest on CPU.")
    target_modules: TargetModules = Field("auto", description=TARGETS_HELP)
    bias: Literal["none", "all", "lora_only"] = Field("none", description="Which biases to train.")
    modules_to_save: list[str] | None = Field(
        None,
        description="Extra modules trained in full and saved (the classifier head is added automatically).",
    )
    use_dora: bool = Field(
        False, description="DoRA: learn a magnitude per output and LoRA on the direction (slower per step)."
    )
    use_rslora: bool = Field(False, description="rsLoRA: scale by alpha / sqrt(r) instead of alpha / r.")
    init: LoraInit = Field(
        "default",
        description="Initialisation: `default` (B = 0, a no-op at start), `gaussian`, `pissa` and `olora` "
        "(from the base weights' SVD / QR; they rewrite the base weights, and peft redoes that on reload), "
        "`orthogonal` (needs an even r), `mica`. Data-driven `eva`/`corda` and `loftq` are not offered.",
    )
    layers_to_transform: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="Adapt only these layer indices (default: every layer)."
    )
    extra: dict[str, object] = _extra_field()


class QLoraAdapter(LoraAdapter):
    type: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    bits: Literal[4, 8] = Field(
        4, description="Bits of the frozen base weights (bitsandbytes); `model.quantization` sets the rest."
    )


class IA3Adapter(_PeftExtra):
    type: Literal["ia3"] = "ia3"
    target_modules: TargetModules = Field(
        "auto",
        description="Layers whose activations get a learned scale; `auto`: peft's choice for the "
        "architecture (keys, values and the MLP down projection). " + TARGETS_HELP.split(": ", 1)[1],
    )
    feedforward_modules: list[str] | None = Field(
        None,
        description="Which targets are feed-forward layers (scaled on their input); required with a list of "
        "target_modules, a subset of it.",
    )
    modules_to_save: list[str] | None = Field(None, description="Extra modules trained in full and saved.")
    extra: dict[str, object] = _extra_field()


class LoHaAdapter(_PeftExtra):
    type: Literal["loha"] = "loha"
    r: PositiveInt = Field(8, description="Rank of each Hadamard factor.")
    alpha: PositiveFloat = Field(8, description="Scaling numerator (scale = alpha / r).")
    dropout: Fraction = Field(0.0, description="Rank dropout during training.")
    target_modules: TargetModules = Field("auto", description=TARGETS_HELP)
    layers_to_transform: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="Adapt only these layer indices (default: every layer)."
    )
    modules_to_save: list[str] | None = Field(None, description="Extra modules trained in full and saved.")
    extra: dict[str, object] = _extra_field()


class LoKrAdapter(LoHaAdapter):
    type: Literal["lokr"] = "lokr"  # type: ignore[assignment]


class VeraAdapter(_PeftExtra):
    type: Literal["vera"] = "vera"
    r: PositiveInt = Field(
        256, description="Rank of the shared frozen random projections (VeRA uses a high one)."
    )
    dropout: Fraction = Field(0.0, description="Dropout on the VeRA input.")
    target_modules: TargetModules = Field("auto", description=TARGETS_HELP)
    layers_to_transform: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="Adapt only these layer indices (default: every layer)."
    )
    modules_to_save: list[str] | None = Field(None, description="Extra modules trained in full and saved.")
    extra: dict[str, object] = _extra_field()


class OftAdapter(_PeftExtra):
    type: Literal["oft"] = "oft"
    block_size: PositiveInt = Field(
        32, description="Size of the orthogonal blocks; must divide the input size of every target."
    )
    target_modules: TargetModules = Field("auto", description=TARGETS_HELP)
    layers_to_transform: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="Adapt only these layer indices (default: every layer)."
    )
    modules_to_save: list[str] | None = Field(None, description="Extra modules trained in full and saved.")
    extra: dict[str, object] = _extra_field()


class AdaptionPromptAdapter(_PeftExtra):
    type: Literal["adaption_prompt"] = "adaption_prompt"
    adapter_len: PositiveInt = Field(10, description="Learned prompt tokens per adapted layer.")
    adapter_layers: PositiveInt | None = Field(
        None, description="Adapt this many of the top layers (default: all of them)."
    )
    extra: dict[str, object] = _extra_field()


class PrefixTuningAdapter(Section):
    type: Literal["prefix_tuning"] = "prefix_tuning"
    num_virtual_tokens: PositiveInt = Field(16, description="Number of learned prefix tokens per layer.")


class PromptTuningAdapter(Section):
    type: Literal["prompt_tuning"] = "prompt_tuning"
    num_virtual_tokens: PositiveInt = Field(16, description="Number of learned soft-prompt tokens.")
    init_text: str | None = Field(None, description="Initialise the soft prompt from this text's embeddings.")


class NoAdapter(Section):
    type: Literal["none"] = "none"


def _adapter_kind(value: object) -> str:
    """The adapter's `type`, `lora` when absent: `model.adapter.r=16` alone means a LoRA adapter."""
    if isinstance(value, dict):
        kind = value.get("type", "lora")
        return kind if isinstance(kind, str) else str(kind)
    return str(getattr(value, "type", "lora"))  # not a mapping: the lora branch reports "expected a mapping"


AdapterConfig = Annotated[
    Annotated[LoraAdapter, Tag("lora")]
    | Annotated[QLoraAdapter, Tag("qlora")]
    | Annotated[IA3Adapter, Tag("ia3")]
    | Annotated[LoHaAdapter, Tag("loha")]
    | Annotated[LoKrAdapter, Tag("lokr")]
    | Annotated[VeraAdapter, Tag("vera")]
    | Annotated[OftAdapter, Tag("oft")]
    | Annotated[AdaptionPromptAdapter, Tag("adaption_prompt")]
    | Annotated[PrefixTuningAdapter, Tag("prefix_tuning")]
    | Annotated[PromptTuningAdapter, Tag("prompt_tuning")]
    | Annotated[NoAdapter, Tag("none")],
    Discriminator(_adapter_kind),
]
