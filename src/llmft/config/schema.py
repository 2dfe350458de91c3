"""The run config: one pydantic model per section, ``extra="forbid"`` everywhere.

Every option is documented once, in ``Field(description=...)``; ``llmft schema`` and docs/CONFIG.md are
generated from these descriptions. Rules about one field live in its type; rules within a section in a
``model_validator(mode="after")``; rules across sections in ``config/checks.py``.
This module imports only pydantic: ``llmft validate`` must not pay for torch.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    Tag,
    model_validator,
)

from llmft.config.peft_fields import extra_field_problem

PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class RuleError(ValueError):
    """A section rule broken; ``fix`` says what to change (pydantic keeps the exception in the error)."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are validated on assignment too.

    Infinity and NaN are refused: YAML reads `.inf`/`.nan` as floats, and no setting means them.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, populate_by_name=True, allow_inf_nan=False
    )


# --------------------------------------------------------------------------------------------- data
class SplitNames(Section):
    train: str = Field(
        "train", description="Split (slice syntax allowed, e.g. `train[:1000]`) used for training."
    )
    validation: str | None = Field(
        None, description="Split used for validation; when absent one is carved off the training split."
    )
    test: str | None = Field(None, description="Split used for the final test evaluation.")


class DatasetConfig(Section):
    source: Literal["auto", "files", "disk", "hub"] = Field(
        "auto",
        description="Where data comes from: local `files`, a `datasets` dir saved with `save_to_disk` "
        "(`disk`), or the Hugging Face `hub`. `auto` infers it from the keys that are set.",
    )
    train_file: str | None = Field(None, description="Training file (json, jsonl, csv, parquet or txt).")
    validation_file: str | None = Field(None, description="Validation file; optional.")
    test_file: str | None = Field(None, description="Test file; optional.")
    dir: str | None = Field(
        None, description="Directory that `train_file`/`validation_file`/`test_file` are in."
    )
    file_format: Literal["json", "jsonl", "csv", "parquet", "text"] | None = Field(
        None, description="Format of the local files; inferred from the file extension when absent."
    )
    path: str | None = Field(None, description="A dataset directory written by `datasets.save_to_disk`.")
    name: str | None = Field(None, description="Hub dataset id, e.g. `imdb` or `glue`.")
    subset: str | None = Field(None, description="Hub dataset configuration, e.g. `sst2` for `glue`.")
    split: SplitNames = Field(default_factory=SplitNames, description="Which splits to use.")
    validation_fraction: Fraction = Field(
        0.1,
        description="Fraction of the training rows held out for validation "
        "when no validation split is given.",
    )
    max_train_rows: PositiveInt | None = Field(None, description="Use at most this many training rows.")
    max_eval_rows: PositiveInt | None = Field(None, description="Use at most this many validation/test rows.")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        kinds = [k for k, v in (("files", self.train_file), ("disk", self.path), ("hub", self.name)) if v]
        if len(kinds) > 1:
            keys = {"files": "train_file", "disk": "path", "hub": "name"}
            raise RuleError(
                f"set only one data source, found {', '.join(kinds)} "
                "(train_file for local files, path for a saved dataset, name for the Hub)",
                fix=f"keep one of {', '.join(f'`{keys[k]}`' for k in kinds)} under `data.dataset:`",
            )
        if not kinds:
            raise RuleError(
                "no data source: set `train_file` (local file), `path` (saved dataset) or `name` (Hub)",
                fix="add e.g. `train_file: data/train.jsonl` under `data.dataset:`",
            )
        return self

    def resolved_source(self) -> str:
        """The source `auto` stands for, decided by which key is set."""
        if self.source != "auto":
            return self.source
        if self.train_file:
            return "files"
        return "disk" if self.path else "hub"


DataFormat = Literal[
    "auto", "text", "alpaca", "sharegpt", "messages", "classification", "preference", "kto", "seq2seq"
]


class PreprocessingConfig(Section):
    format: DataFormat = Field(
        "auto",
        description="Row format. `auto` detects it from the columns: "
        "text, alpaca (instruction/input/output), "
        "sharegpt (conversations), messages (role/content), classification (text + label), "
        "preference (chosen/rejected with prompt, instruction/input, conversations or messages), "
        "kto (prompt/completion/label, or messages with label or kto_tag), seq2seq (input/target).",
    )
    text_column: str = Field("text", description="Column holding the text (text and classification formats).")
    label_column: str = Field("label", description="Column holding the label (classification).")
    input_column: str = Field("input", description="Source column for seq2seq rows.")
    target_column: str = Field("target", description="Target column for seq2seq rows.")
    column_mapping: dict[str, str] = Field(
        default_factory=dict, description="Rename columns before anything else: `{old_name: new_name}`."
    )
    filter_columns: list[str] | None = Field(None, description="Keep only these columns (after renaming).")
    remove_html: bool = Field(False, description="Strip HTML tags from text fields.")
    fix_unicode: bool = Field(
        False, description="Normalise text to Unicode NFKC and drop control characters."
    )
    normalize_whitespace: bool = Field(False, description="Collapse runs of whitespace to one space.")
    min_length: int | None = Field(None, ge=0, description="Drop rows whose text has fewer characters.")
    max_length: PositiveInt | None = Field(None, description="Drop rows whose text has more characters.")
    template: Literal["auto", "tokenizer", "chatml", "alpaca"] = Field(
        "auto",
        description="How instruction/chat rows become text: the tokenizer's chat template (`tokenizer`), "
        "a built-in one (`chatml`, `alpaca`), or `auto` (the tokenizer's when it has one, else chatml).",
    )
    system_prompt: str | None = Field(None, description="System message added to rows that have none.")
    train_on_inputs: bool = Field(
        False, description="Compute the loss on prompt tokens too (default: only on the responses)."
    )
    label_names: list[str] | None = Field(
        None, description="Class names in id order; inferred (sorted) from the training labels when absent."
    )
    on_bad_rows: Literal["error", "skip"] = Field(
        "error",
        description="What to do with rows that cannot be used: stop with an error, or skip and count them.",
    )


class TokenizationConfig(Section):
    tokenizer: str | None = Field(None, description="Tokenizer id or path; defaults to `model.name_or_path`.")
    max_length: PositiveInt = Field(
        512, description="Truncate (or drop, see `overflow`) tokenized rows to this."
    )
    truncation: bool = Field(True, description="Truncate rows longer than `max_length` (else drop them).")
    padding: Literal["longest", "max_length"] = Field(
        "longest", description="Pad each batch to its longest row (`longest`) or always to `max_length`."
    )
    pad_to_multiple_of: PositiveInt | None = Field(8, description="Round padded lengths up to this multiple.")
    add_eos: bool = Field(True, description="Append the end-of-sequence token to plain-text rows.")
    num_proc: PositiveInt | None = Field(
        None, description="Processes for tokenization; default: one per core, max 4."
    )


class NamedDataset(Section):
    """One data set of several trained together (``data.datasets``)."""

    name: str = Field(
        description="Short name: metrics of this set are `eval_<name>_loss`, ...",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
    )
    dataset: DatasetConfig = Field(description="Where this set's rows come from.")
    preprocessing: PreprocessingConfig = Field(
        default_factory=PreprocessingConfig, description="This set's row format, template and cleaning."
    )
    weight: PositiveFloat = Field(
        1.0, description="Share of this set in each epoch under `data.mixing: weighted` (relative)."
    )


class DataConfig(Section):
    dataset: DatasetConfig | None = Field(
        None, description="Where the rows come from (one data set; for several use `datasets`)."
    )
    datasets: list[NamedDataset] | None = Field(
        None,
        description="Several data sets trained together, each with its own format and template; mixed as "
        "`mixing` says and evaluated each on its own (`eval_<name>_loss`) and together (`eval_loss`).",
        min_length=1,
    )
    mixing: Literal["concat", "weighted", "temperature"] = Field(
        "concat",
        description="How `datasets` share an epoch: every row once (`concat`), rows drawn in proportion to "
        "each set's `weight` (`weighted`), or in proportion to size^(1/mixing_temperature) "
        "(`temperature`, which lifts small sets); the draw is fixed by the seed and the epoch.",
    )
    mixing_temperature: PositiveFloat = Field(
        2.0, description="Temperature of `mixing: temperature` (1 = by size; larger flattens toward equal)."
    )
    preprocessing: PreprocessingConfig = Field(
        default_factory=PreprocessingConfig, description="Row format and cleaning."
    )
    tokenization: TokenizationConfig = Field(
        default_factory=TokenizationConfig, description="Tokenizer and lengths."
    )
    packing: bool = Field(
        False,
        description="Pack rows into `max_length` sequences (causal LM) with attention kept within each row.",
    )
    group_by_length: bool = Field(
        True,
        description="Batch rows of similar length together (order still shuffled) to waste less on padding.",
    )

    @model_validator(mode="after")
    def _one_kind_of_source(self) -> DataConfig:
        if (self.dataset is None) == (self.datasets is None):
            raise RuleError(
                "set either `dataset` (one data set) or `datasets` (several), "
                + ("not both" if self.dataset else "found neither"),
                fix="e.g. `dataset: {train_file: data/train.jsonl}` under `data:`"
                if self.dataset is None
                else "move `dataset` into `datasets` as `- {name: main, dataset: {...}}`",
            )
        for problem, fix in _mixture_problems(self):
            raise RuleError(problem, fix=fix)
        return self

    def sets(self) -> list[tuple[str | None, DataConfig]]:
        """Each data set as a one-set DataConfig (its own dataset and preprocessing, the shared tokenization),
        with its name; one unnamed entry for a plain `dataset`."""
        if self.datasets is None:
            return [(None, self)]
        return [
            (
                item.name,
                self.model_copy(
                    update={"dataset": item.dataset, "preprocessing": item.preprocessing, "datasets": None}
                ),
            )
            for item in self.datasets
        ]


def _mixture_problems(data: DataConfig) -> list[tuple[str, str]]:
    """Rules of `datasets`: unique names, weights only where they act, no packing of a drawn mix."""
    if data.datasets is None:
        if data.mixing != "concat":
            return [(f"mixing `{data.mixing}` needs `datasets`", "list the sets under `data.datasets`")]
        return []
    names = [d.name for d in data.datasets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        return [(f"data set names must differ: {', '.join(repeated)}", "give each set its own `name`")]
    weighted = [d.name for d in data.datasets if d.weight != 1.0]
    if weighted and data.mixing != "weighted":
        return [
            (
                f"`weight` is set on {', '.join(weighted)} but mixing is `{data.mixing}`, which ignores it",
                "set `data.mixing: weighted`, or remove the weights",
            )
        ]
    if data.packing and data.mixing != "concat":
        return [
            (
                f"packing packs the rows once, but mixing `{data.mixing}` draws other rows each epoch",
                "use `data.mixing: concat` with packing, or set `data.packing: false`",
            )
        ]
    return []


# -------------------------------------------------------------------------------------------- model
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


class QuantizationConfig(Section):
    method: Literal["bnb-4bit", "bnb-8bit"] = Field(
        "bnb-4bit",
        description="How the frozen base weights are stored: bitsandbytes 4-bit (QLoRA's NF4/FP4) or 8-bit "
        "(LLM.int8). Runs on CUDA, and on CPU with bitsandbytes >= 0.46.1; adapters train in full precision.",
    )
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type (4-bit only).")
    double_quant: bool = Field(
        True, description="Quantise the quantisation constants too (4-bit only; saves ~0.4 bit per weight)."
    )
    compute_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Dtype the 4-bit weights are dequantised to for matmuls; `auto`: bfloat16 on GPUs that "
        "have it, else float16; float32 on CPU.",
    )

    @property
    def bits(self) -> int:
        return 4 if self.method == "bnb-4bit" else 8


class ModelConfig(Section):
    name_or_path: str = Field(description="Hub id or local directory of the base model.")
    task: Literal["auto", "causal_lm", "seq2seq_lm", "sequence_classification"] = Field(
        "auto",
        description="What to train. `auto`: classification when the data has labels, seq2seq for "
        "encoder-decoder models, else causal LM.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weight dtype; `auto` is float32 on CPU and the checkpoint's dtype on GPU."
    )
    trust_remote_code: bool = Field(
        False, description="Run model code shipped with the checkpoint (off by default)."
    )
    allow_pickle: bool = Field(
        False, description="Allow loading pickle-based weights (`.bin`); unsafe for untrusted files."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    attn_implementation: Literal["auto", "eager", "sdpa"] = Field("auto", description="Attention kernel.")
    disable_dropout: bool = Field(
        True, description="Set model dropout to 0 for fine-tuning: faster (and the usual choice for LoRA)."
    )
    adapter: AdapterConfig = Field(default_factory=LoraAdapter, description="How the model is adapted.")
    quantization: QuantizationConfig | None = Field(
        None,
        description="Load the base weights quantised (frozen) and train the adapter on top; "
        "`adapter.type: qlora` implies `{method: bnb-4bit}` (or bnb-8bit with `bits: 8`).",
    )

    @model_validator(mode="after")
    def _quantized_base(self) -> ModelConfig:
        if self.quantization is None:
            return self
        if self.adapter.type == "none":
            raise RuleError(
                "model.quantization freezes the base weights in 4/8 bits, so a full fine-tune "
                "(adapter.type: none) has nothing to train",
                fix="set model.adapter.type: lora (or remove model.quantization)",
            )
        bits = getattr(self.adapter, "bits", None)
        if bits is not None and bits != self.quantization.bits:
            raise RuleError(
                f"model.adapter.bits is {bits} but model.quantization.method is {self.quantization.method}",
                fix=f"set model.quantization.method: bnb-{bits}bit (or remove adapter.bits)",
            )
        return self

    def resolved_quantization(self) -> QuantizationConfig | None:
        """The quantisation of the base: the configured one, or the one `qlora` implies."""
        if self.quantization is not None:
            return self.quantization
        if self.adapter.type == "qlora":
            return QuantizationConfig(method="bnb-8bit" if self.adapter.bits == 8 else "bnb-4bit")
        return None


# ----------------------------------------------------------------------------------------- training
class FsdpConfig(Section):
    """How FSDP2 (torch's ``fully_shard``) shards the model across the processes; see train/sharding.py."""

    reshard_after_forward: bool = Field(
        True,
        description="Free each layer's gathered weights after its forward (ZeRO-3 style, least memory); "
        "false keeps them until the backward (ZeRO-2 style, less communication).",
    )
    cpu_offload: bool = Field(
        False, description="Keep sharded weights and optimizer state in CPU memory (GPU runs only)."
    )
    layer_classes: list[str] | None = Field(
        None,
        description="Module classes sharded one by one (e.g. `LlamaDecoderLayer`); default: the model's "
        "own `_no_split_modules`.",
    )


class DistributedConfig(Section):
    """More than one process: started by `llmft train --nproc N`, torchrun, accelerate launch or srun."""

    strategy: Literal["auto", "ddp", "fsdp", "deepspeed"] = Field(
        "auto",
        description="`auto`: DDP when more than one process (every rank holds the model, gradients are "
        "summed); `fsdp`: FSDP2 shards weights, gradients and optimizer state (GPUs or CPUs); `deepspeed`: "
        "DeepSpeed ZeRO stage 1-3 (GPUs or CPUs; `pip install llmft[deepspeed]`).",
    )
    backend: Literal["auto", "nccl", "gloo"] = Field(
        "auto", description="Collective backend; `auto`: nccl on GPUs, gloo on CPU."
    )
    timeout_minutes: PositiveFloat = Field(
        30, description="How long a rank waits for the others in a collective before the run fails."
    )
    fsdp: FsdpConfig = Field(default_factory=FsdpConfig, description="FSDP settings (strategy `fsdp`).")
    deepspeed: str | dict[str, object] | None = Field(
        None,
        description="DeepSpeed config: a JSON file or a mapping (strategy `deepspeed`); `auto` values are "
        "filled from the training section.",
    )

    @model_validator(mode="after")
    def _deepspeed_needs_strategy(self) -> DistributedConfig:
        if self.deepspeed is not None and self.strategy != "deepspeed":
            raise RuleError(
                f"deepspeed is set but strategy is `{self.strategy}`, so it would be ignored",
                fix="set `strategy: deepspeed`, or delete `deepspeed`",
            )
        if self.strategy == "deepspeed" and self.deepspeed is None:
            raise RuleError(
                "strategy `deepspeed` needs a DeepSpeed config",
                fix="add e.g. `deepspeed: configs/deepspeed/zero2_offload.json` (see configs/)",
            )
        return self


Objective = Literal["auto", "sft", "dpo", "simpo", "orpo", "kto", "reward"]


class PreferenceConfig(Section):
    """Settings of the preference objectives (dpo, simpo, orpo, kto, reward); unset means the objective's
    default. Which objective reads which setting is checked in config/checks.py."""

    beta: PositiveFloat | None = Field(
        None,
        description="Strength of the preference term: DPO/KTO's KL weight, SimPO/ORPO's scale; default 0.1.",
    )
    loss_type: Literal["sigmoid", "robust", "ipo", "hinge"] | None = Field(
        None, description="DPO loss: `sigmoid` (default), `robust` (with label_smoothing), `ipo`, `hinge`."
    )
    label_smoothing: Annotated[float, Field(ge=0, lt=0.5)] | None = Field(
        None, description="DPO `robust`: assumed share of flipped preference labels, in [0, 0.5)."
    )
    gamma: Annotated[float, Field(ge=0)] | None = Field(
        None, description="SimPO target reward margin (the loss uses gamma/beta); default 0.5."
    )
    desirable_weight: PositiveFloat | None = Field(
        None, description="KTO weight of desirable (label true) rows; default 1."
    )
    undesirable_weight: PositiveFloat | None = Field(
        None, description="KTO weight of undesirable (label false) rows; default 1."
    )
    max_length: PositiveInt | None = Field(
        None, description="Longest prompt + completion in tokens; default data.tokenization.max_length."
    )
    max_prompt_length: PositiveInt | None = Field(
        None,
        description="Prompts of a too-long row are cut from the left (keeping their end) to this many "
        "tokens; default half of max_length.",
    )
    precompute_reference: bool = Field(
        False,
        description="DPO/KTO without an adapter: compute the reference log-probs in one pass before "
        "training (cached on disk by data and model) instead of keeping a frozen copy in memory.",
    )
    reference_model: str | None = Field(
        None, description="DPO/KTO: a different reference model (Hub id or directory); default the base."
    )

    @model_validator(mode="after")
    def _lengths(self) -> PreferenceConfig:
        if self.max_length and self.max_prompt_length and self.max_prompt_length >= self.max_length:
            raise RuleError(
                f"max_prompt_length ({self.max_prompt_length}) must be below max_length ({self.max_length}): "
                "a prompt that long leaves no room for the answer",
                fix=f"set max_prompt_length to at most {self.max_length - 1}",
            )
        if self.label_smoothing and self.loss_type != "robust":
            raise RuleError(
                f"label_smoothing is read only by loss_type `robust`, not `{self.loss_type or 'sigmoid'}`",
                fix="set loss_type: robust, or delete label_smoothing",
            )
        return self


class TrainingConfig(Section):
    epochs: PositiveFloat | None = Field(
        None, description="Passes over the training data; default 1 (exclusive with max_steps)."
    )
    max_steps: PositiveInt | None = Field(None, description="Stop after this many optimizer steps.")
    batch_size: PositiveInt = Field(8, description="Rows per process (device) per forward pass.")
    eval_batch_size: PositiveInt | None = Field(
        None, description="Rows per eval batch; defaults to batch_size."
    )
    gradient_accumulation_steps: PositiveInt = Field(1, description="Forward passes per optimizer step.")
    learning_rate: PositiveFloat = Field(2e-4, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (never on biases and norms).")
    optimizer: Literal["adamw", "sgd", "adafactor", "adamw_8bit"] = Field(
        "adamw",
        description="Optimizer: `adamw`; `sgd` (momentum = adam_beta1); `adafactor` (transformers' "
        "Adafactor at this learning rate: less optimizer memory); `adamw_8bit` (bitsandbytes, 8-bit state). "
        "Hugging Face `optim` names are read as these (see Optimizer names below).",
    )
    adam_beta1: float = Field(0.9, gt=0, lt=1, description="AdamW beta1.")
    adam_beta2: float = Field(0.999, gt=0, lt=1, description="AdamW beta2.")
    adam_epsilon: PositiveFloat = Field(1e-8, description="AdamW epsilon.")
    lr_scheduler: Literal["linear", "cosine", "constant"] = Field(
        "linear", description="Learning-rate schedule."
    )
    warmup_steps: int | None = Field(
        None, ge=0, description="Linear warmup steps (exclusive with warmup_ratio)."
    )
    warmup_ratio: Fraction | None = Field(None, description="Warmup as a fraction of all steps.")
    max_grad_norm: PositiveFloat | None = Field(
        1.0, description="Clip gradients to this norm; null disables."
    )
    logging_steps: PositiveInt = Field(10, description="Log (progress bar, metrics.jsonl) every N steps.")
    eval_strategy: Literal["no", "steps", "epoch"] = Field(
        "epoch",
        description="When to evaluate on validation; setting `eval_steps` alone means `steps`.",
    )
    eval_steps: PositiveInt | None = Field(
        None, description="Evaluate every N steps (implies eval_strategy `steps`)."
    )
    save_strategy: Literal["no", "steps", "epoch"] = Field(
        "epoch",
        description="When to write checkpoints: at each epoch's end (default), every `save_steps` (setting "
        "`save_steps` alone means `steps`), or never (`no`, which also turns off save_every_minutes).",
    )
    save_steps: PositiveInt | None = Field(
        None, description="Checkpoint every N steps (implies save_strategy `steps`)."
    )
    save_every_minutes: PositiveFloat | None = Field(
        30,
        description="Also checkpoint after this many minutes of training since the last checkpoint, so a "
        "crash loses at most that much; null turns it off.",
    )
    save_total_limit: PositiveInt | None = Field(2, description="Keep at most this many checkpoints.")
    save_best_metric: str | None = Field(
        None,
        description="Also keep the checkpoint with the best value of this eval metric (e.g. `eval_loss`).",
    )
    early_stopping_patience: PositiveInt | None = Field(
        None, description="Stop after this many evaluations without improvement of `early_stopping_metric`."
    )
    early_stopping_metric: str = Field("eval_loss", description="Metric watched for early stopping.")
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "auto", description="Autocast precision; `auto` uses bf16 only on GPUs that run it fast, fp32 on CPU."
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations: less memory, more time.")
    compile: bool = Field(False, description="torch.compile the model (long first step; helps on GPU).")
    nan_policy: Literal["error", "skip"] = Field(
        "error", description="On a non-finite loss: stop, or skip the batch."
    )
    num_threads: PositiveInt | None = Field(
        None,
        description="CPU threads for torch; default: torch's choice (with several processes on this "
        "machine: its cores divided among them).",
    )
    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig,
        description="Several processes or machines: `batch_size` is per process, the global batch is "
        "batch_size × processes × gradient_accumulation_steps.",
    )
    objective: Objective = Field(
        "auto",
        description="What training minimises: `sft` (next-token loss; the default for instruction data), "
        "`dpo`, `simpo`, `orpo`, `kto` or `reward` (a reward model). `auto`: dpo for preference pairs, kto "
        "for unpaired (label) rows, else sft.",
    )
    preference: PreferenceConfig = Field(
        default_factory=PreferenceConfig, description="Settings of the preference objectives."
    )

    @model_validator(mode="before")
    @classmethod
    def _steps_imply_strategy(cls, data: object) -> object:
        """`save_steps` (or `eval_steps`) alone means the `steps` strategy, as in the HF Trainer: a run the
        user thought was protected by save_steps must not end with no checkpoint."""
        if isinstance(data, dict):
            for every, strategy in (("save_steps", "save_strategy"), ("eval_steps", "eval_strategy")):
                if data.get(every) is not None and data.get(strategy) is None:
                    data = {**data, strategy: "steps"}
        return data

    @model_validator(mode="after")
    def _exclusive(self) -> TrainingConfig:
        if self.epochs is not None and self.max_steps is not None:
            raise RuleError("set epochs or max_steps, not both", fix="delete `epochs` or `max_steps`")
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise RuleError(
                "set warmup_steps or warmup_ratio, not both", fix="delete `warmup_steps` or `warmup_ratio`"
            )
        adam_only = sorted({"adam_beta2", "adam_epsilon"} & self.model_fields_set)
        if self.optimizer == "adafactor" and adam_only:
            raise RuleError(
                f"{', '.join(adam_only)} set, but adafactor does not use them",
                fix=f"delete {', '.join(f'`{k}`' for k in adam_only)}, or use optimizer: adamw",
            )
        if self.eval_strategy == "steps" and self.eval_steps is None:
            raise RuleError(
                "eval_strategy is `steps` but eval_steps is not set",
                fix="add e.g. `eval_steps: 100`, or set `eval_strategy: epoch`",
            )
        for every, strategy in (("save_steps", "save_strategy"), ("eval_steps", "eval_strategy")):
            chosen = getattr(self, strategy)
            if getattr(self, every) is not None and chosen != "steps":
                raise RuleError(
                    f"{every} is set but {strategy} is `{chosen}`, so {every} would be ignored",
                    fix=f"delete `{strategy}: {chosen}` (then {every} means the `steps` strategy), "
                    f"or delete `{every}`",
                )
        if self.save_strategy == "steps" and self.save_steps is None:
            raise RuleError(
                "save_strategy is `steps` but save_steps is not set",
                fix="add e.g. `save_steps: 500`, or set `save_strategy: epoch`",
            )
        return self

    @property
    def num_epochs(self) -> float:
        """Epochs to run when max_steps is not set."""
        return self.epochs if self.epochs is not None else 1.0


# ------------------------------------------------------------------------------------ evaluation etc.
Metric = Literal["loss", "perplexity", "accuracy", "precision", "recall", "f1", "f1_macro"]


class GenerationEvalConfig(Section):
    """Evaluation by generation: answers generated for validation/test rows, scored against the references."""

    max_new_tokens: PositiveInt = Field(64, description="Longest answer generated per row, in tokens.")
    max_rows: PositiveInt | None = Field(
        200, description="Generate for at most this many rows per split (the first ones); null: all."
    )
    when: Literal["end", "every_eval"] = Field(
        "end",
        description="`end`: on the final model only; `every_eval`: also at each evaluation during training "
        "(then the scores can drive early stopping and save_best_metric).",
    )
    do_sample: bool = Field(
        False, description="Sample (temperature 1, the run's seed) instead of greedy decoding."
    )
    batch_size: PositiveInt | None = Field(
        None, description="Prompts generated at once; defaults to training.eval_batch_size or batch_size."
    )


class EvaluationConfig(Section):
    metrics: list[Metric] | None = Field(
        None,
        description="Metrics to report; default: loss+perplexity (LM) "
        "or accuracy/precision/recall/f1 (classification).",
    )
    on_test: bool = Field(True, description="Evaluate on the test split at the end when there is one.")
    generate: GenerationEvalConfig | None = Field(
        None,
        description="Also generate answers for the validation/test rows and score them against the "
        "references (exact match, ROUGE-1/2/L, BLEU, chrF) into eval_results.json, with the samples in "
        "generations.jsonl. Needs the `eval` extra (rouge-score, sacrebleu).",
    )


class HpoConfig(Section):
    enabled: bool = Field(False, description="Run a hyperparameter search instead of a single training run.")
    backend: Literal["grid", "random", "optuna", "ray"] = Field("grid", description="Search engine.")
    metric: str = Field("eval_loss", description="Metric to optimise (`eval_loss`, `eval_accuracy`, ...).")
    direction: Literal["minimize", "maximize"] = Field(
        "minimize", description="Whether lower or higher is better."
    )
    max_trials: PositiveInt | None = Field(
        None, description="Trials to run; grid defaults to the whole grid."
    )
    parameters: dict[str, object] = Field(
        default_factory=dict,
        description="Config path → space: a list (choices), `{low, high, log}` (float) "
        "or `{low, high, step}` (int).",
    )
    parallel: PositiveInt = Field(1, description="Trials at once on this machine.")
    timeout: PositiveFloat | None = Field(None, description="Stop starting trials after this many seconds.")
    storage: str | None = Field(
        None, description="Optuna storage URL; default: SQLite file in the output dir."
    )
    pruner: Literal["none", "median", "asha"] = Field("median", description="Early stopping of bad trials.")
    search_algorithm: Literal["random", "tpe", "optuna", "hyperopt", "bayesopt"] | None = Field(
        None, description="Ray Tune search algorithm."
    )
    ray_address: str | None = Field(None, description="Ray cluster to join; default: a local Ray instance.")
    refit: bool = Field(False, description="Train the best config once more as the run's model.")
    seed: int | None = Field(None, description="Seed of the sampler; defaults to the run seed.")


class TrackingConfig(Section):
    report_to: list[Literal["jsonl", "tensorboard", "wandb", "mlflow"]] = Field(
        default_factory=lambda: ["jsonl"],
        description="Where metrics go besides the run dir's metrics.jsonl, which is always written (resume "
        "and `llmft report` read it; listing `jsonl` is optional): `tensorboard` (event files, needs "
        "`llmft[tensorboard]`), `mlflow` (needs `llmft[mlflow]`), `wandb` (needs `llmft[wandb]`).",
    )
    project: str | None = Field(None, description="MLflow experiment / W&B project name; default `llmft`.")
    run_name: str | None = Field(
        None, description="MLflow / W&B run name; default: the output dir's name (the trial's, in a search)."
    )
    api_key: str | None = Field(
        None,
        description="W&B API key (else WANDB_API_KEY or `wandb login`); passed to wandb in memory only and "
        "redacted from every file llmft writes.",
    )
    dir: str | None = Field(
        None, description="TensorBoard event folder for this run; default OUTPUT/tensorboard."
    )
    uri: str | None = Field(
        None,
        description="MLflow tracking URI (a server `http://...` or `sqlite:///path.db`); default "
        "MLFLOW_TRACKING_URI, else a local store OUTPUT/mlflow.db (artifacts in OUTPUT/mlartifacts).",
    )
    log_model: bool = Field(
        False, description="Also upload the final model folder as an MLflow artifact (can be large)."
    )

    @model_validator(mode="after")
    def _settings_have_their_tracker(self) -> TrackingConfig:
        """A setting for a tracker that is not in report_to would do nothing: refused, not ignored."""
        needs = {"dir": "tensorboard", "uri": "mlflow", "log_model": "mlflow"}
        for name, tracker in needs.items():
            if getattr(self, name) and tracker not in self.report_to:
                raise RuleError(
                    f"tracking.{name} is set but {tracker} is not in tracking.report_to: it would do nothing",
                    fix=f"add {tracker} to tracking.report_to, or remove tracking.{name}",
                )
        return self


class RunConfig(Section):
    """The whole run. Sections are built by explicit builders, each taking only its own section."""

    output_dir: str = Field(
        "outputs/run", description="Run directory; relative paths are relative to the config file."
    )
    seed: int = Field(42, description="Seed for data order, initialisation and dropout.")
    data: DataConfig = Field(description="Data source, format and tokenization.")
    model: ModelConfig = Field(description="Base model and adapter.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Optimisation settings.")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="What is measured.")
    hpo: HpoConfig = Field(default_factory=HpoConfig, description="Hyperparameter search.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="Metric logging.")
    hf_token: str | None = Field(
        None, description="Hub token for private models/data; redacted from all outputs."
    )
