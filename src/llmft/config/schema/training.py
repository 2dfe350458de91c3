"""The `training` section: optimisation, schedule, evaluation and checkpoint cadence, precision."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from llmft.config.schema.base import Fraction, PositiveFloat, RuleError, Section
from llmft.config.schema.distributed import DistributedConfig
from llmft.config.schema.preference import Objective, PreferenceConfig
from llmft.config.schema.rl import RlConfig


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
        "`dpo`, `simpo`, `orpo`, `kto` or `reward` (a reward model); `grpo` or `rloo` (online RL on the "
        "data's prompts, with training.rl). `auto`: dpo for preference pairs, kto for unpaired (label) "
        "rows, grpo for prompt-only rows, else sft.",
    )
    preference: PreferenceConfig = Field(
        default_factory=PreferenceConfig, description="Settings of the preference objectives."
    )
    rl: RlConfig | None = Field(
        None, description="Settings of the online RL objectives (grpo, rloo): sampling, rewards, the loss."
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
