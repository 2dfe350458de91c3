"""The legacy mappings that need logic, each a small named function of the normalising state; the table
in config/legacy.py says when each runs and what it reads."""

from __future__ import annotations

import re
from collections.abc import Callable

from llmft.config import optimizers
from llmft.config.legacy_steps import Normalised, split


def _prefix(section: str) -> str:
    return f"{section}." if section else ""


# ------------------------------------------------------------------------------------- named rules
def drop_type_marker(state: Normalised, section: str, implied: tuple[str, ...]) -> None:
    """`type: huggingface` / `type: auto` carried no information; anything else is ambiguous."""
    sec = state.section(section)
    kind = sec.get("type") if sec is not None else None
    if sec is None or kind is None:
        return
    path = f"{_prefix(section)}type"
    if str(kind).lower() in implied:
        sec.pop("type")
        state.note(path, f"legacy `type: {kind}` is implied and ignored", "delete the line")
    else:
        state.error(
            path,
            f"legacy `type: {kind}` has no certain meaning here",
            "delete it; llmft always uses the Hugging Face stack",
        )


DATASET_KINDS = ("huggingface", "hf", "hub", "auto", "local", "files", "file", "disk")


def dataset_type(state: Normalised) -> None:
    ds = state.section("data.dataset")
    kind = str(ds.get("type", "")).lower() if ds is not None else ""
    if ds is None or kind not in DATASET_KINDS:
        return
    ds.pop("type")
    if kind == "disk":
        ds.setdefault("source", "disk")
    state.note("data.dataset.type", f"legacy `type: {kind}` ignored (source is inferred)", "delete the line")


def load_from_disk_or_hub(state: Normalised) -> None:
    ds, p = state.section("data.dataset"), "data.dataset."
    if ds is None:
        return
    from_disk, from_hub = ds.pop("load_from_disk", None), ds.pop("load_from_hub", None)
    if from_disk:
        target = from_disk if isinstance(from_disk, str) else ds.pop("dir", None) or ds.pop("name", None)
        if target is None and "path" not in ds:
            message = "legacy `load_from_disk` is set but no directory is given"
            state.error(
                f"{p}load_from_disk",
                message,
                f"write `{p}path:` with the directory written by `save_to_disk`",
            )
        elif target is not None:
            ds["path"] = target
            state.notice(f"{p}load_from_disk", f"{p}path")
    elif from_hub is not None:
        message = "legacy key ignored (the Hub is used when `name` is set)"
        state.note(f"{p}load_from_hub", message, "delete the line")


def split_as_string(state: Normalised) -> None:
    ds = state.section("data.dataset")
    if ds is not None and isinstance(ds.get("split"), str):
        ds["split"] = {"train": ds["split"]}
        state.notice("data.dataset.split", "data.dataset.split.train", "a single split name")


def tokenizer_block(state: Normalised) -> None:
    """The top-level `tokenizer:` block of one dialect is the `data.tokenization` section."""
    data = state.section("data")
    if isinstance(state.data.get("tokenizer"), dict) and data is not None and "tokenization" not in data:
        data["tokenization"] = state.data.pop("tokenizer")
        state.notice("tokenizer", "data.tokenization")


PREPROCESSING_TYPES = {
    "text": "auto",
    "alpaca": "alpaca",
    "instruction": "alpaca",
    "chat": "messages",
    "messages": "messages",
    "sharegpt": "sharegpt",
    "classification": "classification",
}


def preprocessing_type(state: Normalised) -> None:
    """`type:` became `format:`; in that layout `max_length` was a token limit, not a character one."""
    pre, path = state.section("data.preprocessing"), "data.preprocessing.type"
    if pre is None or "type" not in pre:
        return
    kind = str(pre.pop("type")).lower()
    if kind not in PREPROCESSING_TYPES:
        pre["type"] = kind
        fix = "write `format:` with one of auto, text, alpaca, sharegpt, messages, classification"
        state.error(path, f"legacy `type: {kind}` has no certain meaning", fix)
        return
    if PREPROCESSING_TYPES[kind] != "auto":
        pre.setdefault("format", PREPROCESSING_TYPES[kind])
    state.note(
        path, f"legacy `type: {kind}` read as `format: {pre.get('format', 'auto')}`", "write `format:`"
    )
    if "max_length" in pre:
        tok = state.section("data.tokenization", create=True)
        if tok is not None:
            tok.setdefault("max_length", pre.pop("max_length"))
            state.notice("data.preprocessing.max_length", "data.tokenization.max_length", "a token limit")


def padding(state: Normalised) -> None:
    tok = state.section("data.tokenization")
    value = tok.get("padding") if tok is not None else None
    if tok is not None and (value is True or value is False or value in ("dynamic", "do_not_pad")):
        tok["padding"] = "longest"
        message = f"legacy value `{value}` read as `longest` (each batch padded to its longest row)"
        state.note("data.tokenization.padding", message, "write `padding: longest`")


def dropped(path: str, why: str, fix: str = "delete the line") -> Callable[[Normalised], None]:
    """A rule that drops a legacy key that carries no setting, saying why."""

    def drop(state: Normalised) -> None:
        parent, key = split(path)
        sec = state.section(parent)
        if sec is not None and key in sec:
            sec.pop(key)
            state.note(path, why, fix)

    return drop


def nested_lora(state: Normalised) -> None:
    adapter = state.section("model.adapter")
    nested = adapter.get("lora") if adapter is not None else None
    if adapter is None or not isinstance(nested, dict):
        return
    adapter.pop("lora")
    for key, value in nested.items():
        adapter.setdefault({"lora_alpha": "alpha", "lora_dropout": "dropout"}.get(key, key), value)
    adapter.setdefault("type", "lora")
    state.notice("model.adapter.lora", "model.adapter", "its keys moved up one level")


def adapter_enabled(state: Normalised) -> None:
    adapter = state.section("model.adapter")
    if adapter is None or "enabled" not in adapter:
        return
    if adapter["enabled"] is False:
        adapter.clear()
        adapter["type"] = "none"
        state.notice("model.adapter.enabled", "model.adapter.type: none")
    elif adapter["enabled"] is True:
        adapter.pop("enabled")


def _spread(state: Normalised, path: str, keymap: dict[str, str]) -> None:
    """Move the keys of a legacy sub-dict (``optimizer: {name, learning_rate}``) into the training section."""
    tr = state.section("training")
    sub = tr.get(split(path)[1]) if tr is not None else None
    if tr is None or not isinstance(sub, dict):
        return
    tr.pop(split(path)[1])
    for key, value in sub.items():
        new = keymap.get(key)
        if new is None:
            state.error(
                f"{path}.{key}", f"unknown legacy key `{key}`", "set the matching `training.` key instead"
            )
        elif new in tr and tr[new] != value:
            state.error(
                f"{path}.{key}", f"`{path}.{key}` and `training.{new}` disagree", f"keep `training.{new}`"
            )
        else:
            tr[new] = value
            state.notice(f"{path}.{key}", f"training.{new}")


OPTIMIZER_BLOCK = {
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
SCHEDULER_BLOCK = {
    "name": "lr_scheduler",
    "type": "lr_scheduler",
    "num_warmup_steps": "warmup_steps",
    "warmup_steps": "warmup_steps",
    "warmup_ratio": "warmup_ratio",
}


def optimizer_block(state: Normalised) -> None:
    _spread(state, "training.optimizer", OPTIMIZER_BLOCK)


def scheduler_block(state: Normalised) -> None:
    _spread(state, "training.lr_scheduler", SCHEDULER_BLOCK)


def _runs(name: object) -> object:
    """What llmft runs for an optimizer name (the name itself when the table does not know it)."""
    entry = optimizers.lookup(name)
    return entry.runs if entry is not None and entry.runs is not None else name


def optim(state: Normalised) -> None:
    """`optim` (Hugging Face's key) is `optimizer`: two names for the same optimizer agree, others clash."""
    tr = state.section("training")
    if tr is None or "optim" not in tr:
        return
    value = tr.pop("optim")
    entry = optimizers.lookup(value)
    if entry is not None and entry.runs is None:
        state.error("training.optim", *optimizers.not_implemented(str(value)))
        return
    if "optimizer" in tr and not isinstance(tr["optimizer"], dict) and _runs(tr["optimizer"]) != _runs(value):
        message = (
            f"`training.optim: {value}` and `training.optimizer: {tr['optimizer']}` name different optimizers"
        )
        state.error("training.optim", message, "keep only `training.optimizer`")
        return
    if "optimizer" not in tr:
        tr["optimizer"] = value
    state.notice("training.optim", "training.optimizer", "Hugging Face's name for it")


def optimizer_value(state: Normalised) -> None:
    """A Hugging Face optimizer name read as llmft's; one llmft does not implement is an error."""
    tr = state.section("training")
    value = tr.get("optimizer") if tr is not None else None
    entry = optimizers.lookup(value)
    if tr is None or entry is None or value == entry.runs:
        return
    if entry.runs is None:
        message, fix = optimizers.not_implemented(str(value))
        state.error("training.optimizer", message, fix)
        return
    tr["optimizer"] = entry.runs
    state.note(
        "training.optimizer",
        f"legacy value `{value}` read as `{entry.runs}` ({entry.note})",
        f"write `optimizer: {entry.runs}`",
    )


def max_steps_unset(state: Normalised) -> None:
    tr = state.section("training")
    if tr is not None and tr.get("max_steps") in (-1, 0):
        value = tr.pop("max_steps")
        state.note(
            "training.max_steps", f"legacy `max_steps: {value}` meant unset (epochs decide)", "delete it"
        )


def precision(state: Normalised) -> None:
    tr = state.section("training")
    if tr is None:
        return
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


def is_regression(state: Normalised) -> None:
    """`is_regression: false` is what llmft always does; `true` (a regression head) it does not do."""
    tr, path = state.section("training"), "training.is_regression"
    if tr is None or "is_regression" not in tr:
        return
    value = tr.pop("is_regression")
    if value is False:
        state.note(
            path,
            "legacy `is_regression: false` is implied (classification, or not a classifier)",
            "delete the line",
        )
    else:
        state.error(
            path,
            f"legacy `is_regression: {value}`: llmft trains classifiers (cross-entropy), not regression",
            "delete it, and give the rows class labels (data.preprocessing.label_column)",
        )


def ray_tune_block(state: Normalised) -> None:
    """The legacy top-level `ray_tune` block is an `hpo` section with `backend: ray`; not both at once."""
    raw = state.data
    if not isinstance(raw.get("ray_tune"), dict):
        return
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


NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _number(text: str) -> int | float:
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)


def _unquoted(spec: object) -> object | None:
    """The space with its numbers-as-strings read as numbers, or None when there are none to read."""
    if isinstance(spec, dict):
        bounds = {k: v for k, v in spec.items() if k in ("low", "high", "step")}
        if bounds and all(
            isinstance(v, (int, float)) or (isinstance(v, str) and NUMBER.fullmatch(v))
            for v in bounds.values()
        ):
            fixed = {**spec, **{k: _number(v) for k, v in bounds.items() if isinstance(v, str)}}
            return fixed if fixed != spec else None
        return None
    if not isinstance(spec, list):
        return None
    head = spec[:1] if spec and isinstance(spec[0], str) and not NUMBER.fullmatch(spec[0]) else []
    rest = spec[len(head) :]
    texts = [v for v in rest if isinstance(v, str) and v != "log"]
    if not texts or not all(NUMBER.fullmatch(v) for v in texts):
        return None
    return head + [_number(v) if isinstance(v, str) and v != "log" else v for v in rest]


def hpo_numbers(state: Normalised) -> None:
    """`"learning_rate": ["1e-5", "5e-5"]`: numbers quoted in a space are numbers (never a text field's
    values: every value of the list must read as a number)."""
    params = state.section("hpo.parameters")
    for name, spec in (params or {}).items():
        fixed = _unquoted(spec)
        if fixed is not None:
            params[name] = fixed  # type: ignore[index]
            state.note(
                f"hpo.parameters.{name}",
                f"numbers written as strings read as numbers: {fixed}",
                "write the numbers without quotes",
            )


LM_TASKS = ("causal_lm", "seq2seq_lm")
CLASSIFIER_ONLY_METRICS = ("precision", "recall", "f1", "f1_macro")


def lm_classifier_metrics(state: Normalised) -> None:
    """In a legacy file, precision/recall/F1 asked of a language model are dropped with a notice (they have
    no meaning there; `accuracy` is next-token accuracy). A modern config gets the error of checks.py."""
    model, evaluation = state.section("model"), state.section("evaluation")
    metrics = evaluation.get("metrics") if evaluation is not None else None
    task = model.get("task") if model is not None else None
    if not state.problems or task not in LM_TASKS or not isinstance(metrics, list):
        return
    dropped_names = [m for m in metrics if m in CLASSIFIER_ONLY_METRICS]
    if not dropped_names:
        return
    kept = [m for m in metrics if m not in CLASSIFIER_ONLY_METRICS]
    if kept:
        evaluation["metrics"] = kept  # type: ignore[index]
    else:
        evaluation.pop("metrics")  # type: ignore[union-attr]
    state.note(
        "evaluation.metrics",
        f"{', '.join(dropped_names)} dropped: precision/recall/F1 have no meaning for a {task} model "
        "(accuracy there is next-token accuracy)",
        f"write `metrics: [{', '.join(kept or ['loss', 'perplexity'])}]`",
    )
