"""The run config: one pydantic model per section, ``extra="forbid"`` everywhere.

Every option is documented once, in ``Field(description=...)``; ``llmft schema`` and docs/CONFIG.md are
generated from these descriptions. Rules about one field live in its type; rules within a section in a
``model_validator(mode="after")``; rules across sections in ``config/checks.py``.
This module imports only pydantic: ``llmft validate`` must not pay for torch.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PositiveInt, Tag, model_validator

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


class DataConfig(Section):
    dataset: DatasetConfig = Field(description="Where the rows come from.")
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


# -------------------------------------------------------------------------------------------- model
TargetModules = Literal["auto", "all-linear"] | list[str]


class LoraAdapter(Section):
    type: Literal["lora"] = "lora"
    r: PositiveInt = Field(8, description="LoRA rank.")
    alpha: PositiveFloat = Field(16, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: Fraction = Field(0.0, description="Dropout on the LoRA input; 0 is fastest on CPU.")
    target_modules: TargetModules = Field(
        "auto",
        description="Module names to adapt; `auto` picks the attention projections of the architecture.",
    )
    bias: Literal["none", "all", "lora_only"] = Field("none", description="Which biases to train.")
    modules_to_save: list[str] | None = Field(
        None,
        description="Extra modules trained in full and saved (the classifier head is added automatically).",
    )


class QLoraAdapter(LoraAdapter):
    type: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    bits: Literal[4, 8] = Field(
        4, description="Quantisation of the frozen base weights (bitsandbytes, CUDA only)."
    )


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
    | Annotated[PrefixTuningAdapter, Tag("prefix_tuning")]
    | Annotated[PromptTuningAdapter, Tag("prompt_tuning")]
    | Annotated[NoAdapter, Tag("none")],
    Discriminator(_adapter_kind),
]


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


# ----------------------------------------------------------------------------------------- training
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
    batch_size: PositiveInt = Field(8, description="Rows per device per forward pass.")
    eval_batch_size: PositiveInt | None = Field(
        None, description="Rows per eval batch; defaults to batch_size."
    )
    gradient_accumulation_steps: PositiveInt = Field(1, description="Forward passes per optimizer step.")
    learning_rate: PositiveFloat = Field(2e-4, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (never on biases and norms).")
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="Optimizer.")
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
        None, description="CPU threads for torch; default: torch's choice."
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


class EvaluationConfig(Section):
    metrics: list[Metric] | None = Field(
        None,
        description="Metrics to report; default: loss+perplexity (LM) "
        "or accuracy/precision/recall/f1 (classification).",
    )
    on_test: bool = Field(True, description="Evaluate on the test split at the end when there is one.")


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
        description="Where metrics go; `jsonl` is the run dir's metrics.jsonl.",
    )
    project: str | None = Field(None, description="Project name for external trackers.")
    run_name: str | None = Field(None, description="Run name for external trackers.")
    api_key: str | None = Field(None, description="Tracker API key; redacted from every file llmft writes.")


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
