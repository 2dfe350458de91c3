"""The `Fix:` of each schema problem: one short, concrete edit derived from the error and the schema.

``render.py`` decides what a problem says; this module only says what to write instead. Examples come
from the field's default where it has a useful one, else from ``EXAMPLES`` (fields whose default is
null), else from the expected type. Imports only pydantic, like the schema: ``llmft validate`` is fast.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

# Examples for fields whose default says nothing (null, a factory, a section), by dotted path.
EXAMPLES: dict[str, str] = {
    "data": "{dataset: {train_file: data/train.jsonl}}",
    "data.dataset": "{train_file: data/train.jsonl}",
    "data.dataset.train_file": "data/train.jsonl",
    "data.dataset.max_train_rows": "1000",
    "data.dataset.max_eval_rows": "200",
    "data.preprocessing.column_mapping": "{old_name: new_name}",
    "data.preprocessing.filter_columns": "[text, label]",
    "data.preprocessing.label_names": "[negative, positive]",
    "data.preprocessing.min_length": "10",
    "data.preprocessing.max_length": "4000",
    "data.tokenization.num_proc": "4",
    "model": "{name_or_path: gpt2}",
    "model.name_or_path": "gpt2",
    "model.adapter": "{type: lora, r: 8}",
    "model.adapter.dropout": "0.05",
    "model.adapter.target_modules": "[q_proj, v_proj]",
    "model.adapter.modules_to_save": "[score]",
    "training.epochs": "3",
    "training.max_steps": "1000",
    "training.eval_batch_size": "16",
    "training.weight_decay": "0.01",
    "training.warmup_steps": "100",
    "training.warmup_ratio": "0.1",
    "training.eval_steps": "100",
    "training.save_steps": "500",
    "training.early_stopping_patience": "3",
    "training.num_threads": "4",
    "evaluation.metrics": "[loss, perplexity]",
    "hpo.max_trials": "20",
    "hpo.parameters": "{training.learning_rate: [1e-4, 3e-4]}",
    "hpo.timeout": "3600",
    "hpo.seed": "42",
    "tracking.report_to": "[jsonl, tensorboard]",
}
NUMBER_EXAMPLE = {"float": "2e-4", "int": "8"}
MAX_KEYS_SHOWN = 10
OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
KIND_OPS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}


def value_text(value: object) -> str:
    """A value as it is written in YAML: ``2e-4``, ``true``, ``gpt2``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        if 0 < abs(value) < 1e-3:
            mantissa, exponent = f"{value:e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:g}"
    return str(value)


def _field(model: type[BaseModel] | None, key: str | None) -> FieldInfo | None:
    return model.model_fields.get(key) if model is not None and key is not None else None


def _inner(annotation: object) -> list[object]:
    """The types an annotation stands for: Optional, unions and Annotated unwrapped (None dropped)."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _inner(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in get_args(annotation) if a is not type(None) for t in _inner(a)]
    return [annotation]


def _is_int(field: FieldInfo | None) -> bool:
    if field is None:
        return False
    kinds = _inner(field.annotation)
    return int in kinds and float not in kinds


def example(model: type[BaseModel] | None, key: str | None, path: str) -> str | None:
    """A value worth showing for a field: a known example, else its default when that says something."""
    if path in EXAMPLES:
        return EXAMPLES[path]
    field = _field(model, key)
    default = field.default if field is not None else None
    if isinstance(default, bool) or not isinstance(default, (int, float, str)) or default in ("", "auto"):
        return None
    return value_text(default)


def _number_example(model: type[BaseModel] | None, key: str | None, path: str, whole: bool) -> str:
    found = example(model, key, path)
    return found or NUMBER_EXAMPLE["int" if whole else "float"]


def _allowed(options: list[str]) -> str:
    if len(options) <= MAX_KEYS_SHOWN:
        return ", ".join(options)
    shown = ", ".join(options[: MAX_KEYS_SHOWN - 1])
    return f"{shown}, ... ({len(options) - MAX_KEYS_SHOWN + 1} more in docs/CONFIG.md)"


def unknown_key(
    key: str,
    section: str,
    options: list[str],
    match: str | None,
    modern: str | None = None,
    owners: list[str] | None = None,
) -> str:
    """``rename `X` to `Y``` for a near name, else ``remove `X``` with the keys this section allows.

    ``modern``: the current spelling when the near name is a legacy key; ``owners``: the other kinds of a
    section union (adapter types) that do have the key.
    """
    if match is not None:
        if modern is None or modern == match:
            return f"rename `{key}` to `{match}`"
        parent, _, leaf = modern.rpartition(".")
        if parent == section and re.fullmatch(r"\w+", leaf):
            return f"rename `{key}` to `{leaf}` (the current name of `{match}`)"
        return f"replace `{key}` with `{modern}` (the current spelling of `{match}`)"
    where = f"`{section}`" if section else "the top level"
    if owners:
        kinds = " or ".join(f"`type: {o}`" for o in owners)
        return f"remove `{key}`: it belongs to {kinds}; keys allowed here: {_allowed(options)}"
    if not options:
        return f"remove `{key}` (see docs/CONFIG.md for the keys {where} allows)"
    return f"remove `{key}` (allowed keys here: {_allowed(options)})"


def choice(choices: list[str], match: str | None) -> str:
    """``use `cosine` (or one of: linear, constant)`` with a near match; else ``use one of: ...``."""
    if match is not None and match in choices:
        others = [c for c in choices if c != match]
        if not others:
            return f"use `{match}`"
        rest = others[0] if len(others) == 1 else f"one of: {', '.join(others)}"
        return f"use `{match}` (or {rest})"
    if match is not None:
        return f"use `{match}`"
    return f"use one of: {', '.join(choices)}"


def _list_example(field: FieldInfo | None, path: str) -> str:
    if path in EXAMPLES:
        return EXAMPLES[path]
    items: list[str] = []
    if field is not None:

        def collect(annotation: object) -> None:
            if get_origin(annotation) is Literal:
                items.extend(str(a) for a in get_args(annotation))
            for arg in get_args(annotation):
                collect(arg)

        collect(field.annotation)
    return f"[{', '.join(items[:2])}]" if items else "[first, second]"


def _tags(section: type[BaseModel]) -> list[str]:
    """The values of a section's `type` field (a kind of a section union), if it has one."""
    field = section.model_fields.get("type")
    return [str(t) for t in get_args(field.annotation)] if field is not None else []


def _one_required_text_field(section: type[BaseModel]) -> str | None:
    required = [name for name, f in section.model_fields.items() if f.is_required()]
    if len(required) == 1 and str in _inner(section.model_fields[required[0]].annotation):
        return required[0]
    return None


def mapping(name: str, value: object, path: str, sections: list[type[BaseModel]], dict_field: bool) -> str:
    """A section (or a dict field) written as something else: what its ``key: value`` form looks like."""
    if isinstance(value, str) and re.match(r"^[\w.-]+:\S", value):
        return f"put a space after the colon: `{value.replace(':', ': ', 1)}`"
    if value is None:
        return f"indent its `key: value` lines under `{name}:`, or delete the empty `{name}:` line"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return f"remove the `- ` before each key under `{name}:` (`key: value` lines, not a list)"
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) and sections:
        text = value_text(value)
        if text in [tag for section in sections for tag in _tags(section)]:
            return f"write `{name}: {{type: {text}}}`"
        holder = _one_required_text_field(sections[0])
        if holder is not None:
            return f"write `{name}: {{{holder}: {text}}}`"
    shown = EXAMPLES.get(path)
    if dict_field and shown:
        return f"write `key: value` pairs, e.g. `{name}: {shown}`"
    if shown:
        return f"write `key: value` lines indented under `{name}:`, e.g. `{name}: {shown}`"
    return f"write `key: value` lines indented under `{name}:` (see docs/CONFIG.md)"


def wrong_type(
    kind: str, name: str, value: object, model: type[BaseModel] | None, key: str | None, path: str
) -> str | None:
    """The fix for a scalar of the wrong type (``float_parsing``, ``bool_type``, ...); None if not one."""
    field = _field(model, key)
    if kind.startswith("float") or kind == "finite_number":
        sample = _number_example(model, key, path, whole=False)
        if kind == "finite_number":
            return f"write a finite number such as {sample} (not .inf or .nan)"
        return f"write a number such as {sample} (no quotes)"
    if kind.startswith("int"):
        sample = _number_example(model, key, path, whole=True)
        if kind == "int_from_float":
            return f"write a whole number such as {sample} (no decimal point)"
        return f"write a whole number such as {sample} (no quotes)"
    if kind.startswith("bool"):
        if field is not None:
            return f"write `{name}: true` or `{name}: false` (no quotes)"
        return "write true or false (no quotes)"
    if kind == "string_type":
        if isinstance(value, (int, float, bool)) or value is None:
            return f'quote it: `"{value_text(value) if value is not None else "null"}"`'
        sample = example(model, key, path)
        return f"write text such as `{sample}`" if sample else "write text (quoted if it looks like a number)"
    if kind == "list_type":
        if isinstance(value, str) and value:
            return f"write a list: `{name}: [{value}]`"
        return f"write a list such as {_list_example(field, path)}"
    return None


def _bounds(field: FieldInfo | None) -> dict[str, object]:
    """The numeric bounds of a field (``{"ge": 0, "lt": 1}``), wherever pydantic keeps them."""
    found: dict[str, object] = {}
    if field is None:
        return found

    def take(metadata: list[object]) -> None:
        for item in metadata:
            if isinstance(item, FieldInfo):
                take(item.metadata)
            for op in OPS:
                if isinstance(item, getattr(annotated_types, op.capitalize())):
                    found[op] = getattr(item, op)

    def walk(annotation: object) -> None:
        if get_origin(annotation) is typing.Annotated:
            take(list(get_args(annotation)[1:]))
        for arg in get_args(annotation):
            walk(arg)

    take(list(field.metadata))
    walk(field.annotation)
    return found


def out_of_range(kind: str, bound: object, model: type[BaseModel] | None, key: str | None, path: str) -> str:
    """``use a value > 0, such as 2e-4``, with every bound of the field (``>= 0 and < 1``)."""
    field = _field(model, key)
    bounds = _bounds(field) or {KIND_OPS[kind]: bound}
    bounds.setdefault(KIND_OPS[kind], bound)
    order = [op for op in ("gt", "ge", "lt", "le") if op in bounds]
    limits = " and ".join(f"{OPS[op]} {value_text(bounds[op])}" for op in order)
    whole = _is_int(field)
    noun = "a whole number" if whole else "a value"
    sample = example(model, key, path)
    if sample is not None and _within(sample, bounds):
        return f"use {noun} {limits}, such as {sample}"
    return f"use {noun} {limits}"


def _within(sample: str, bounds: dict[str, object]) -> bool:
    try:
        number = float(sample)
        checks = {
            "gt": lambda b: number > b,
            "ge": lambda b: number >= b,
            "lt": lambda b: number < b,
            "le": lambda b: number <= b,
        }
        return all(checks[op](float(b)) for op, b in bounds.items())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def missing(key: str, parent: str, model: type[BaseModel] | None) -> str:
    """``add `name_or_path: gpt2` under `model:```, with an example where one is known."""
    path = f"{parent}.{key}" if parent else key
    sample = example(model, key, path)
    where = f" under `{parent}:`" if parent else ""
    if sample is not None:
        return f"add `{key}: {sample}`{where}"
    return f"add `{key}:`{where} (see docs/CONFIG.md)"


def _is_section(kind: object) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def describe(field: FieldInfo | None) -> str | None:
    """What a field expects, in words (``a whole number``, ``one of: a, b``), when it can be said simply."""
    if field is None:
        return None
    kinds = _inner(field.annotation)
    literals = [str(a) for k in kinds if get_origin(k) is Literal for a in get_args(k)]
    words = []
    if literals:
        words.append(f"one of: {', '.join(literals)}")
    for kind in kinds:
        if kind is bool:
            words.append("true or false")
        elif kind is int:
            words.append("a whole number")
        elif kind is float:
            words.append("a number")
        elif kind is str:
            words.append("text")
        elif get_origin(kind) is list or kind is list:
            words.append("a list")
        elif kind is dict or get_origin(kind) is dict or _is_section(kind):
            words.append("a mapping (key: value pairs)")
    words = list(dict.fromkeys(words))
    return " or ".join(words) if words else None


def generic(name: str, path: str, model: type[BaseModel] | None, key: str | None) -> str:
    """For an error no rule above covers: name the field and what it takes."""
    wanted = describe(_field(model, key))
    if wanted:
        return f"set `{name}` to {wanted} (see `{path}` in docs/CONFIG.md)"
    return f"check `{path}` against docs/CONFIG.md"
