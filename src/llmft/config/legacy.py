"""Legacy config layouts, normalised onto the schema in ONE place.

Two older dialects exist in the wild (see docs/CONFIG.md, "Legacy layouts"): the `configs/example_config.json`
style (`type: huggingface` everywhere, `lora_alpha`, `evaluation_strategy`, `hpo.search_space`...) and the
Trainer-like style (`num_train_epochs`, `optimizer: {name, learning_rate}`, `lr_scheduler: {name,
num_warmup_steps}`, `hf_dataset_name`...). Each mapping below is certain; it is applied and reported as a
one-line notice with the modern spelling. Where a value cannot be mapped with certainty, an error says
what to write instead. The function is idempotent: a modern config passes through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmft.errors import Problem

Raw = dict[str, object]


@dataclass
class Normalised:
    """The normalised dict, what was changed (notices) or refused (errors), and new→old key paths."""

    data: Raw
    problems: list[Problem] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)

    def notice(self, old: str, new: str, detail: str = "") -> None:
        self.aliases[new] = old
        extra = f" ({detail})" if detail else ""
        self.problems.append(
            Problem(
                path=old,
                message=f"legacy key, read as `{new}`{extra}",
                fix=f"write `{new}`",
                severity="notice",
            )
        )

    def error(self, path: str, message: str, fix: str) -> None:
        self.problems.append(Problem(path=path, message=message, fix=fix))


def _section(parent: Raw, key: str) -> Raw | None:
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def _move(state: Normalised, sec: Raw, prefix: str, old: str, new: str, value: object = None) -> None:
    """Move ``sec[old]`` to ``sec[new]`` (a dotted ``new`` goes into sub-sections); report a clash."""
    if old not in sec:
        return
    raw = sec.pop(old)
    value = raw if value is None else value
    target, *rest = new.split(".")
    holder = sec
    parts = [target, *rest]
    for part in parts[:-1]:
        holder = holder.setdefault(part, {})  # type: ignore[assignment]
        if not isinstance(holder, dict):
            return
    leaf = parts[-1]
    full_new = f"{prefix}{new}"
    if leaf in holder and holder[leaf] != value:
        state.error(
            f"{prefix}{old}",
            f"both `{prefix}{old}` (legacy) and `{full_new}` are set, to different values",
            f"keep only `{full_new}`",
        )
        return
    holder[leaf] = value
    state.notice(f"{prefix}{old}", full_new)


def _drop_type_marker(state: Normalised, sec: Raw, prefix: str, allowed: tuple[str, ...]) -> None:
    """`type: huggingface` / `type: auto` carried no information; anything else is ambiguous."""
    kind = sec.get("type")
    if kind is None:
        return
    if str(kind).lower() in allowed:
        sec.pop("type")
        state.problems.append(
            Problem(
                path=f"{prefix}type",
                message=f"legacy `type: {kind}` is implied and ignored",
                fix="delete the line",
                severity="notice",
            )
        )
    else:
        state.error(
            f"{prefix}type",
            f"legacy `type: {kind}` has no certain meaning here",
            "delete it; llmft always uses the Hugging Face stack",
        )


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
OPTIMIZERS = {
    "adamw": "adamw",
    "adamw_torch": "adamw",
    "adamw_hf": "adamw",
    "adam": "adamw",
    "adamw_torch_fused": "adamw",
    "sgd": "sgd",
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
PREPROCESSING_TYPES = {
    "text": "auto",
    "alpaca": "alpaca",
    "instruction": "alpaca",
    "chat": "messages",
    "messages": "messages",
    "sharegpt": "sharegpt",
    "classification": "classification",
}


def _map_enum(state: Normalised, sec: Raw, prefix: str, key: str, table: dict[str, str]) -> None:
    value = sec.get(key)
    if isinstance(value, str) and value.lower() in table and table[value.lower()] != value:
        sec[key] = table[value.lower()]
        state.problems.append(
            Problem(
                path=f"{prefix}{key}",
                message=f"legacy value `{value}` read as `{sec[key]}`",
                fix=f"write `{key}: {sec[key]}`",
                severity="notice",
            )
        )


def _normalise_dataset(state: Normalised, ds: Raw, pre: Raw) -> None:
    p = "data.dataset."
    kind = str(ds.get("type", "")).lower()
    if kind in ("huggingface", "hf", "hub", "auto", "local", "files", "file", "disk"):
        ds.pop("type")
        if kind == "disk":
            ds.setdefault("source", "disk")
        state.problems.append(
            Problem(
                path=f"{p}type",
                message=f"legacy `type: {kind}` ignored (source is inferred)",
                fix="delete the line",
                severity="notice",
            )
        )
    from_disk = ds.pop("load_from_disk", None)
    from_hub = ds.pop("load_from_hub", None)
    if from_disk:
        target = from_disk if isinstance(from_disk, str) else ds.pop("dir", None) or ds.pop("name", None)
        if target is None and "path" not in ds:
            state.error(
                f"{p}load_from_disk",
                "legacy `load_from_disk` is set but no directory is given",
                f"write `{p}path:` with the directory written by `save_to_disk`",
            )
        elif target is not None:
            ds["path"] = target
            state.notice(f"{p}load_from_disk", f"{p}path")
    elif from_hub is not None:
        state.problems.append(
            Problem(
                path=f"{p}load_from_hub",
                message="legacy key ignored (the Hub is used when `name` is set)",
                fix="delete the line",
                severity="notice",
            )
        )
    _move(state, ds, p, "dataset_format", "file_format")
    _move(state, ds, p, "hf_dataset_name", "name")
    _move(state, ds, p, "hf_dataset_config", "subset")
    _move(state, ds, p, "config_name", "subset")
    _move(state, ds, p, "validation_split", "validation_fraction")
    _move(state, ds, p, "val_split_ratio", "validation_fraction")
    if "hf_dataset_split" in ds:
        _move(state, ds, p, "hf_dataset_split", "split.train")
    if isinstance(ds.get("split"), str):
        ds["split"] = {"train": ds["split"]}
    if ds.get("file_format") == "txt":
        ds["file_format"] = "text"
    for key in ("column_mapping", "filter_columns"):
        if key in ds:
            if key in pre and pre[key] != ds[key]:
                state.error(
                    f"{p}{key}",
                    f"`{key}` is set in both data.dataset and data.preprocessing",
                    f"keep only `data.preprocessing.{key}`",
                )
                continue
            pre[key] = ds.pop(key)
            state.notice(f"{p}{key}", f"data.preprocessing.{key}")


def _normalise_data(state: Normalised, data: Raw, root: Raw) -> None:
    if isinstance(root.get("tokenizer"), dict) and "tokenization" not in data:
        data["tokenization"] = root.pop("tokenizer")
        state.notice("tokenizer", "data.tokenization")
    pre = data.setdefault("preprocessing", {})
    tok = data.setdefault("tokenization", {})
    ds = _section(data, "dataset")
    if not isinstance(pre, dict) or not isinstance(tok, dict):
        return
    if ds is not None:
        _normalise_dataset(state, ds, pre)
    is_legacy_pre = "type" in pre
    if is_legacy_pre:
        kind = str(pre.pop("type")).lower()
        if kind in PREPROCESSING_TYPES:
            if PREPROCESSING_TYPES[kind] != "auto":
                pre.setdefault("format", PREPROCESSING_TYPES[kind])
            state.problems.append(
                Problem(
                    path="data.preprocessing.type",
                    message=f"legacy `type: {kind}` read as `format: {pre.get('format', 'auto')}`",
                    fix="write `format:`",
                    severity="notice",
                )
            )
        else:
            pre["type"] = kind
            state.error(
                "data.preprocessing.type",
                f"legacy `type: {kind}` has no certain meaning",
                "write `format:` with one of auto, text, alpaca, sharegpt, messages, classification",
            )
        if "max_length" in pre:  # the legacy layout meant tokens here, not characters
            tokens = pre.pop("max_length")
            tok.setdefault("max_length", tokens)
            state.notice("data.preprocessing.max_length", "data.tokenization.max_length", "a token limit")
    _drop_type_marker(state, tok, "data.tokenization.", ("huggingface", "hf", "auto"))
    for old in ("model_name_or_path", "name_or_path", "tokenizer_name", "name"):
        _move(state, tok, "data.tokenization.", old, "tokenizer")
    padding = tok.get("padding")
    if padding is True or padding is False or padding in ("dynamic", "do_not_pad", "longest"):
        tok["padding"] = "longest"
    tok.pop("add_special_tokens", None)


def _normalise_adapter(state: Normalised, model: Raw) -> None:
    p = "model.adapter."
    for old, new in (
        ("lora_r", "adapter.r"),
        ("lora_alpha", "adapter.alpha"),
        ("lora_dropout", "adapter.dropout"),
        ("target_modules", "adapter.target_modules"),
    ):
        _move(state, model, "model.", old, new)
    adapter = _section(model, "adapter")
    if adapter is None:
        return
    for key in ("peft_type", "method"):
        _move(state, adapter, p, key, "type")
    nested = _section(adapter, "lora")
    if nested is not None:
        adapter.pop("lora")
        for key, value in nested.items():
            adapter.setdefault({"lora_alpha": "alpha", "lora_dropout": "dropout"}.get(key, key), value)
        adapter.setdefault("type", "lora")
        state.notice(f"{p}lora", "model.adapter", "its keys moved up one level")
    _move(state, adapter, p, "lora_alpha", "alpha")
    _move(state, adapter, p, "lora_dropout", "dropout")
    _move(state, adapter, p, "lora_r", "r")
    adapter.pop("task_type", None)
    _map_enum(state, adapter, p, "type", ADAPTER_TYPES)
    if adapter.get("enabled") is False:
        adapter.clear()
        adapter["type"] = "none"
        state.notice(f"{p}enabled", f"{p}type: none")
    elif adapter.get("enabled") is True:
        adapter.pop("enabled")


def _normalise_model(state: Normalised, model: Raw) -> None:
    p = "model."
    _drop_type_marker(state, model, p, ("huggingface", "hf", "auto", "transformers"))
    for old in ("model_name_or_path", "pretrained_model_name_or_path", "model_name", "name"):
        _move(state, model, p, old, "name_or_path")
    _move(state, model, p, "model_type", "task")
    _move(state, model, p, "torch_dtype", "dtype")
    _map_enum(state, model, p, "task", TASKS)
    if "num_labels" in model:
        model.pop("num_labels")
        state.problems.append(
            Problem(
                path="model.num_labels",
                message="ignored: the labels come from the data",
                fix="set data.preprocessing.label_names to fix their order",
                severity="notice",
            )
        )
    _normalise_adapter(state, model)


def _normalise_training(state: Normalised, tr: Raw, root: Raw) -> None:
    p = "training."
    _drop_type_marker(state, tr, p, ("huggingface", "hf", "auto", "default"))
    for old, new in (
        ("num_train_epochs", "epochs"),
        ("num_epochs", "epochs"),
        ("per_device_train_batch_size", "batch_size"),
        ("train_batch_size", "batch_size"),
        ("per_device_eval_batch_size", "eval_batch_size"),
        ("evaluation_strategy", "eval_strategy"),
        ("optim", "optimizer"),
        ("lr_scheduler_type", "lr_scheduler"),
        ("lr", "learning_rate"),
        ("num_warmup_steps", "warmup_steps"),
    ):
        _move(state, tr, p, old, new)
    opt = tr.get("optimizer")
    if isinstance(opt, dict):
        tr.pop("optimizer")
        keymap = {
            "name": "optimizer",
            "type": "optimizer",
            "learning_rate": "learning_rate",
            "lr": "learning_rate",
            "weight_decay": "weight_decay",
            "beta1": "adam_beta1",
            "beta2": "adam_beta2",
            "eps": "adam_epsilon",
            "epsilon": "adam_epsilon",
        }
        _spread(state, tr, opt, "training.optimizer", keymap)
    sched = tr.get("lr_scheduler")
    if isinstance(sched, dict):
        tr.pop("lr_scheduler")
        keymap = {
            "name": "lr_scheduler",
            "type": "lr_scheduler",
            "num_warmup_steps": "warmup_steps",
            "warmup_steps": "warmup_steps",
            "warmup_ratio": "warmup_ratio",
        }
        _spread(state, tr, sched, "training.lr_scheduler", keymap)
    _map_enum(state, tr, p, "optimizer", OPTIMIZERS)
    _map_enum(state, tr, p, "lr_scheduler", SCHEDULERS)
    if tr.get("max_steps") in (-1, 0):
        tr.pop("max_steps")
    _normalise_precision(state, tr)
    for key in ("seed", "output_dir"):
        if key in tr and key not in root:
            root[key] = tr.pop(key)
            state.notice(f"training.{key}", key)


def _spread(state: Normalised, tr: Raw, sub: Raw, path: str, keymap: dict[str, str]) -> None:
    """Move the keys of a legacy sub-dict (``optimizer: {name, learning_rate}``) into the training section."""
    for key, value in sub.items():
        new = keymap.get(key)
        if new is None:
            state.error(
                f"{path}.{key}", f"unknown legacy key `{key}`", "set the matching `training.` key instead"
            )
            continue
        if new in tr and tr[new] != value:
            state.error(
                f"{path}.{key}", f"`{path}.{key}` and `training.{new}` disagree", f"keep `training.{new}`"
            )
            continue
        tr[new] = value
        state.notice(f"{path}.{key}", f"training.{new}")


def _normalise_precision(state: Normalised, tr: Raw) -> None:
    fp16, bf16 = tr.pop("fp16", None), tr.pop("bf16", None)
    if fp16 is None and bf16 is None:
        return
    if fp16 and bf16:
        state.error(
            "training.fp16", "fp16 and bf16 are both true", "set `training.mixed_precision: fp16` or `bf16`"
        )
        return
    value = "fp16" if fp16 else "bf16" if bf16 else "no"
    if tr.get("mixed_precision", value) != value:
        state.error(
            "training.fp16", "fp16/bf16 contradict training.mixed_precision", "keep only mixed_precision"
        )
        return
    tr["mixed_precision"] = value
    state.notice(
        "training.fp16" if fp16 is not None else "training.bf16", f"training.mixed_precision: {value}"
    )


def _normalise_hpo(state: Normalised, hpo: Raw) -> None:
    p = "hpo."
    for old in ("type", "strategy", "search_strategy", "method"):
        _move(state, hpo, p, old, "backend")
    for old in ("max_evals", "num_samples", "n_trials", "num_trials"):
        _move(state, hpo, p, old, "max_trials")
    _move(state, hpo, p, "search_space", "parameters")
    _move(state, hpo, p, "max_concurrent_trials", "parallel")
    _move(state, hpo, p, "scheduler", "pruner")
    _move(state, hpo, p, "mode", "direction")
    _map_enum(state, hpo, p, "backend", HPO_BACKENDS)
    _map_enum(state, hpo, p, "direction", {"min": "minimize", "max": "maximize"})
    _map_enum(
        state,
        hpo,
        p,
        "pruner",
        {"asha": "asha", "median": "median", "none": "none", "async_hyperband": "asha", "hyperband": "asha"},
    )


def _merge_ray_tune(state: Normalised, raw: Raw) -> None:
    """The legacy top-level `ray_tune` block is an `hpo` section with `backend: ray`; not both at once."""
    block = {"enabled": True, "backend": "ray", **raw.pop("ray_tune")}  # type: ignore[dict-item]
    hpo = raw.get("hpo", {})
    if not isinstance(hpo, dict):
        return
    if any(k not in ("enabled", "backend") for k in hpo):  # popped either way: normalising runs twice
        state.error(
            "ray_tune",
            "both the legacy `ray_tune` block and an `hpo` section are set",
            "move the `ray_tune` keys into `hpo` (with `backend: ray`) and delete `ray_tune`",
        )
        return
    raw["hpo"] = {**block, **hpo}  # an explicit `hpo.enabled: false` still switches the search off
    state.notice("ray_tune", "hpo", "with backend: ray")


def normalise_legacy(raw: Raw) -> Normalised:
    """Rewrite legacy spellings onto the schema; returns the data, notices/errors and key aliases."""
    state = Normalised(data=raw)
    if isinstance(raw.get("ray_tune"), dict):
        _merge_ray_tune(state, raw)
    data = _section(raw, "data")
    if data is not None:
        _normalise_data(state, data, raw)
    model = _section(raw, "model")
    if model is not None:
        _normalise_model(state, model)
    training = _section(raw, "training")
    if training is not None:
        _normalise_training(state, training, raw)
    evaluation = _section(raw, "evaluation")
    if evaluation is not None:
        _drop_type_marker(state, evaluation, "evaluation.", ("huggingface", "hf", "auto", "default"))
    hpo = _section(raw, "hpo")
    if hpo is not None:
        _normalise_hpo(state, hpo)
    return state


# Legacy values accepted for enum fields, offered by did-you-mean (then shown as the modern value).
LEGACY_VALUES: dict[str, dict[str, str]] = {
    "model.adapter.type": ADAPTER_TYPES,
    "model.task": TASKS,
    "training.optimizer": OPTIMIZERS,
    "training.lr_scheduler": SCHEDULERS,
    "hpo.backend": HPO_BACKENDS,
}

# Legacy key names accepted in each section, offered by did-you-mean alongside the modern names.
LEGACY_KEYS: dict[str, tuple[str, ...]] = {
    "": ("ray_tune", "tokenizer"),
    "data.dataset": (
        "load_from_disk",
        "load_from_hub",
        "dataset_format",
        "hf_dataset_name",
        "hf_dataset_config",
        "hf_dataset_split",
        "column_mapping",
        "filter_columns",
        "validation_split",
    ),
    "data.tokenization": ("model_name_or_path", "tokenizer_name"),
    "model": (
        "model_type",
        "model_name_or_path",
        "torch_dtype",
        "lora_alpha",
        "lora_dropout",
        "lora_r",
        "target_modules",
        "num_labels",
    ),
    "model.adapter": ("lora_alpha", "lora_dropout", "lora_r", "lora", "peft_type"),
    "training": (
        "num_train_epochs",
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "evaluation_strategy",
        "optim",
        "lr_scheduler_type",
        "fp16",
        "bf16",
        "num_warmup_steps",
    ),
    "hpo": (
        "search_space",
        "max_evals",
        "num_samples",
        "strategy",
        "max_concurrent_trials",
        "scheduler",
        "mode",
    ),
}
