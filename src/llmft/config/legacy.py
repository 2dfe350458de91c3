"""Legacy config layouts, normalised onto the schema in ONE place: the table ``STEPS`` below.

Two older dialects exist in the wild: the `configs/example_config.json` style (`type: huggingface`
everywhere, `lora_alpha`, `evaluation_strategy`, `hpo.search_space`...) and the Trainer-like style
(`num_train_epochs`, `optimizer: {name, learning_rate}`, `lr_scheduler: {name, num_warmup_steps}`,
`hf_dataset_name`...). Each step is a rename (``Rename``), a map of legacy values (``Values``) or, where a
mapping needs logic, a small named function (``Rule``, in legacy_rules.py). Everything else is derived
from the table: the notices, the legacy keys offered by did-you-mean (``LEGACY_KEYS``), the modern
spelling named in error messages (``modern_path``) and the legacy section of docs/CONFIG.md
(``legacy_markdown``). Normalising is idempotent: a modern config passes through unchanged.
"""

from __future__ import annotations

from functools import partial

from llmft.config import legacy_rules as r
from llmft.config.legacy_steps import Normalised, Raw, Rename, Rule, Values, split
from llmft.config.optimizers import SYNONYMS as OPTIMIZERS

ADAPTER_TYPES = {
    "lora": "lora",
    "qlora": "qlora",
    "prefix": "prefix_tuning",
    "prefix_tuning": "prefix_tuning",
    "prefix-tuning": "prefix_tuning",
    "prompt": "prompt_tuning",
    "prompt_tuning": "prompt_tuning",
    "prompt-tuning": "prompt_tuning",
    "none": "none",
    "full": "none",
}
SCHEDULERS = {
    "linear": "linear",
    "cosine": "cosine",
    "constant": "constant",
    "constant_with_warmup": "constant",
}
HPO_BACKENDS = {
    "grid": "grid",
    "grid_search": "grid",
    "random": "random",
    "random_search": "random",
    "optuna": "optuna",
    "tpe": "optuna",
    "bayesian": "optuna",
    "ray": "ray",
    "ray_tune": "ray",
}
TASKS = {
    "causal_lm": "causal_lm",
    "causallm": "causal_lm",
    "clm": "causal_lm",
    "seq2seq": "seq2seq_lm",
    "seq2seq_lm": "seq2seq_lm",
    "sequence_classification": "sequence_classification",
    "classification": "sequence_classification",
    "seq_cls": "sequence_classification",
}
PRUNERS = {"asha": "asha", "median": "median", "none": "none", "async_hyperband": "asha", "hyperband": "asha"}
IMPLIED = ("huggingface", "hf", "auto")


def _type_marker(section: str, implied: tuple[str, ...]) -> Rule:
    return Rule(
        (f"{section}.type",),
        None,
        "dropped (implied)",
        partial(r.drop_type_marker, section=section, implied=implied),
    )


def _renames(section: str, pairs: dict[str, str], **kwargs: str) -> list[Rename]:
    """``{old: new}`` within one section (``new`` may go into a sub-section: ``lora_r`` → ``adapter.r``)."""
    return [Rename(f"{section}.{old}", f"{section}.{new}", **kwargs) for old, new in pairs.items()]


# The table, applied top to bottom (a later step sees what earlier ones wrote).
STEPS: tuple[Rename | Values | Rule, ...] = (
    Rule(("ray_tune",), "hpo", "`hpo` with `backend: ray`", r.ray_tune_block),
    # data
    Rule(("tokenizer",), "data.tokenization", "`data.tokenization`", r.tokenizer_block),
    Rule(("data.dataset.type",), None, "dropped (the source is inferred)", r.dataset_type),
    Rule(
        ("data.dataset.load_from_disk", "data.dataset.load_from_hub"),
        "data.dataset.path",
        "`path` (the directory); `load_from_hub` dropped (the Hub is used when `name` is set)",
        r.load_from_disk_or_hub,
    ),
    *_renames(
        "data.dataset",
        {
            "dataset_format": "file_format",
            "hf_dataset_name": "name",
            "hf_dataset_config": "subset",
            "config_name": "subset",
            "validation_split": "validation_fraction",
            "val_split_ratio": "validation_fraction",
            "hf_dataset_split": "split.train",
        },
    ),
    Rule(
        ("data.dataset.split",),
        "data.dataset.split.train",
        "a split name alone: `split.train`",
        r.split_as_string,
    ),
    Values("data.dataset.file_format", {"txt": "text"}),
    *[
        Rename(
            f"data.dataset.{key}",
            f"data.preprocessing.{key}",
            clash=f"`{key}` is set in both data.dataset and data.preprocessing",
        )
        for key in ("column_mapping", "filter_columns")
    ],
    Rule(
        ("data.preprocessing.type", "data.preprocessing.max_length"),
        "data.preprocessing.format",
        "`format` (`text` → `auto`, `instruction` → `alpaca`, `chat` → `messages`); `max_length` (a token "
        "limit there) → `data.tokenization.max_length`",
        r.preprocessing_type,
    ),
    _type_marker("data.tokenization", IMPLIED),
    *[
        Rename(f"data.tokenization.{old}", "data.tokenization.tokenizer")
        for old in ("model_name_or_path", "name_or_path", "tokenizer_name", "name")
    ],
    Rule(
        ("data.tokenization.padding",),
        None,
        "`true`, `false`, `dynamic`, `do_not_pad` → `longest`",
        r.padding,
    ),
    Rule(
        ("data.tokenization.add_special_tokens",),
        None,
        "dropped (the tokenizer's own setting is used)",
        r.dropped(
            "data.tokenization.add_special_tokens", "legacy key ignored (the tokenizer's own setting is used)"
        ),
    ),
    # model
    _type_marker("model", (*IMPLIED, "transformers")),
    *[
        Rename(f"model.{old}", "model.name_or_path")
        for old in ("model_name_or_path", "pretrained_model_name_or_path", "model_name", "name")
    ],
    *_renames("model", {"model_type": "task", "torch_dtype": "dtype"}),
    Values("model.task", TASKS),
    Rule(
        ("model.num_labels",),
        None,
        "dropped (the labels come from the data; `data.preprocessing.label_names` fixes their order)",
        r.dropped(
            "model.num_labels",
            "ignored: the labels come from the data",
            "set data.preprocessing.label_names to fix their order",
        ),
    ),
    *_renames(
        "model",
        {
            "lora_r": "adapter.r",
            "lora_alpha": "adapter.alpha",
            "lora_dropout": "adapter.dropout",
            "target_modules": "adapter.target_modules",
        },
    ),
    *[Rename(f"model.adapter.{old}", "model.adapter.type") for old in ("peft_type", "method")],
    Rule(("model.adapter.lora",), "model.adapter", "its keys, one level up", r.nested_lora),
    *_renames("model.adapter", {"lora_alpha": "alpha", "lora_dropout": "dropout", "lora_r": "r"}),
    Rule(
        ("model.adapter.task_type",),
        None,
        "dropped (follows `model.task`)",
        r.dropped("model.adapter.task_type", "legacy key ignored (peft's task type follows model.task)"),
    ),
    Values("model.adapter.type", ADAPTER_TYPES),
    Rule(("model.adapter.enabled",), "model.adapter.type", "`false` → `type: none`", r.adapter_enabled),
    # training
    _type_marker("training", (*IMPLIED, "default")),
    *_renames(
        "training",
        {
            "num_train_epochs": "epochs",
            "num_epochs": "epochs",
            "per_device_train_batch_size": "batch_size",
            "train_batch_size": "batch_size",
            "per_device_eval_batch_size": "eval_batch_size",
            "evaluation_strategy": "eval_strategy",
            "lr_scheduler_type": "lr_scheduler",
            "lr": "learning_rate",
            "num_warmup_steps": "warmup_steps",
        },
    ),
    Rule(
        ("training.optimizer.name", "training.optimizer.learning_rate", "training.optimizer.beta1"),
        "training.optimizer",
        "`optimizer: {name, type, learning_rate, lr, weight_decay, beta1, beta2, eps}` → `optimizer`, "
        "`learning_rate`, `weight_decay`, `adam_beta1`, `adam_beta2`, `adam_epsilon`",
        r.optimizer_block,
    ),
    Rule(
        ("training.lr_scheduler.name", "training.lr_scheduler.num_warmup_steps"),
        "training.lr_scheduler",
        "`lr_scheduler: {name, type, num_warmup_steps, warmup_ratio}` → `lr_scheduler`, `warmup_steps`, "
        "`warmup_ratio`",
        r.scheduler_block,
    ),
    Rule(
        ("training.optim",),
        "training.optimizer",
        "`optimizer` (Hugging Face names; naming a different optimizer than `optimizer` is an error)",
        r.optim,
    ),
    Rule(
        (),
        "training.optimizer",
        "Hugging Face optimizer names → llmft's (see the optimizer table); others are refused",
        r.optimizer_value,
    ),
    Values("training.lr_scheduler", SCHEDULERS),
    Rule(("training.max_steps",), None, "`-1` or `0` → unset", r.max_steps_unset),
    Rule(("training.fp16", "training.bf16"), "training.mixed_precision", "`mixed_precision`", r.precision),
    Rule(
        ("training.is_regression",),
        None,
        "`false` dropped (implied); `true` is refused (no regression heads)",
        r.is_regression,
    ),
    *[Rename(f"training.{key}", key) for key in ("seed", "output_dir")],
    # evaluation
    _type_marker("evaluation", (*IMPLIED, "default")),
    Rename("evaluation.batch_size", "training.eval_batch_size"),
    # hpo
    *[Rename(f"hpo.{old}", "hpo.backend") for old in ("type", "strategy", "search_strategy", "method")],
    *[
        Rename(f"hpo.{old}", "hpo.max_trials")
        for old in ("max_evals", "num_samples", "n_trials", "num_trials")
    ],
    *_renames(
        "hpo",
        {
            "search_space": "parameters",
            "max_concurrent_trials": "parallel",
            "scheduler": "pruner",
            "mode": "direction",
        },
    ),
    Values("hpo.backend", HPO_BACKENDS),
    Values("hpo.direction", {"min": "minimize", "max": "maximize"}),
    Values("hpo.pruner", PRUNERS),
    Rule((), "hpo.parameters", 'numbers written as strings (`"1e-5"`) → numbers', r.hpo_numbers),
    # last: needs the task, and whether anything above was legacy
    Rule(
        (),
        "evaluation.metrics",
        "in a legacy file, `precision`/`recall`/`f1` with a causal or seq2seq LM: dropped (no meaning there; "
        "`accuracy` is next-token accuracy)",
        r.lm_classifier_metrics,
    ),
)


def normalise_legacy(raw: Raw) -> Normalised:
    """Rewrite legacy spellings onto the schema; returns the data, notices/errors and key aliases."""
    state = Normalised(data=raw)
    for step in STEPS:
        step.apply(state)
    return state


# ----------------------------------------------------------------------------- derived from STEPS
def _legacy_paths() -> list[tuple[str, str | None]]:
    """(legacy key path, modern path it is read as) for every key the table reads."""
    pairs: list[tuple[str, str | None]] = []
    for step in STEPS:
        if isinstance(step, Rename):
            pairs.append((step.old, step.new))
        elif isinstance(step, Rule):
            pairs += [(key, step.modern) for key in step.keys]
    return pairs


def _legacy_keys() -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for path, modern in _legacy_paths():
        section, key = split(path)
        is_marker = key == "type" and modern is None  # `type: huggingface`: dropped, nothing to suggest
        if not is_marker and key not in found.setdefault(section, []):
            found[section].append(key)
    return {section: tuple(keys) for section, keys in found.items()}


# Legacy key names accepted in each section, offered by did-you-mean alongside the modern names.
LEGACY_KEYS: dict[str, tuple[str, ...]] = _legacy_keys()

# Legacy values accepted for enum fields, offered by did-you-mean (then shown as the modern value).
LEGACY_VALUES: dict[str, dict[str, str]] = {
    **{step.path: dict(step.table) for step in STEPS if isinstance(step, Values)},
    "training.optimizer": OPTIMIZERS,
}


def modern_path(section: str, key: str) -> str | None:
    """The dotted path a legacy key is read as (``model.lora_r`` → ``model.adapter.r``), if it has one."""
    old = f"{section}.{key}" if section else key
    return next((new for path, new in _legacy_paths() if path == old), None)


def _code(items: list[str]) -> str:
    return ", ".join(f"`{i}`" for i in items)


def legacy_markdown() -> str:
    """The table of legacy spellings for docs/CONFIG.md, one row per step of ``STEPS``."""
    rows = ["| legacy | read as |", "| --- | --- |"]
    for step in STEPS:
        if isinstance(step, Rename):
            rows.append(f"| `{step.old}` | `{step.new}` |")
        elif isinstance(step, Values):
            pairs = [f"`{old}` → `{new}`" for old, new in step.table.items() if old != new]
            rows.append(f"| `{step.path}` values | {', '.join(pairs)} |")
        else:
            rows.append(f"| {_code(list(step.keys)) or f'`{step.modern}`'} | {step.doc} |")
    return "\n".join(rows)
