"""Turn pydantic's validation errors into problems a person can act on.

Each problem names the dotted path, what was expected, what was found, and, for unknown keys and enum
values, the nearest valid spelling (``did you mean``).
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from typing import Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from llmft.config.legacy import LEGACY_KEYS
from llmft.config.schema import RunConfig
from llmft.errors import Problem

EXPECTED = {
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping (key: value pairs)",
    "model_type": "a mapping (key: value pairs)",
    "model_attributes_type": "a mapping (key: value pairs)",
    "list_type": "a list",
}


def show(value: object) -> str:
    """Repeat a user's value back compactly, JSON style."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _model_in(annotation: object, tag: str | None) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation (unions and Annotated unwrapped; a union tag picks one)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _model_in(get_args(annotation)[0], tag)
    if origin in (typing.Union, types.UnionType):
        models = [m for a in get_args(annotation) if (m := _model_in(a, None)) is not None]
        for model in models:
            field = model.model_fields.get("type")
            if tag is not None and field is not None and tag in get_args(field.annotation):
                return model
        return models[0] if len(models) == 1 else None
    return None


def walk_loc(loc: tuple[object, ...]) -> tuple[type[BaseModel] | None, str | None, list[str]]:
    """Follow an error location through the schema.

    Returns the section class holding the last key, that key, and the display path (union tags dropped).
    """
    model: type[BaseModel] | None = RunConfig
    display: list[str] = []
    i = 0
    key: str | None = None
    while i < len(loc):
        key = str(loc[i])
        display.append(key)
        if model is None or key not in model.model_fields:
            return model, key, display
        if i == len(loc) - 1:
            return model, key, display
        annotation = model.model_fields[key].annotation
        nxt = str(loc[i + 1])
        inner = _model_in(annotation, nxt)
        if inner is not None and nxt not in inner.model_fields and _is_tag(annotation, nxt):
            i += 1  # skip the discriminator tag pydantic puts in the location
        model = inner
        i += 1
    return model, key, display


def _is_tag(annotation: object, value: str) -> bool:
    return _model_in(annotation, value) is not None and value in {
        str(t) for m in _union_members(annotation) for t in get_args(m.model_fields["type"].annotation)
    }


def _union_members(annotation: object) -> list[type[BaseModel]]:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _union_members(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in get_args(annotation) if (m := _model_in(a, None)) is not None]
    return []


def literal_choices(model: type[BaseModel] | None, key: str | None) -> list[str]:
    """The allowed values of an enum-like field, for did-you-mean suggestions."""
    if model is None or key not in (model.model_fields if model else {}):
        return []
    found: list[str] = []

    def collect(annotation: object) -> None:
        if get_origin(annotation) is Literal:
            found.extend(str(a) for a in get_args(annotation))
        for arg in get_args(annotation):
            collect(arg)

    collect(model.model_fields[key].annotation)  # type: ignore[index]
    return found


def suggest(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean `{match[0]}`?)" if match else ""


def _problem(err: dict[str, object]) -> Problem:
    loc = tuple(err["loc"])  # type: ignore[arg-type]
    kind = str(err["type"])
    value = err.get("input")
    model, key, display = walk_loc(loc)
    path = ".".join(display)
    if kind == "extra_forbidden":
        options = list(model.model_fields) if model is not None else []
        legacy = list(LEGACY_KEYS.get(".".join(display[:-1]), ()))
        hint = suggest(str(key), options + legacy)
        fix = f"valid keys here: {', '.join(options)}" if not hint else None
        return Problem(path, f"unknown key{hint}", fix=fix)
    if kind in ("literal_error", "enum"):
        choices = literal_choices(model, key)
        return Problem(path, f"expected one of {', '.join(choices)}; got {show(value)}{suggest(str(value), choices)}")
    if kind == "union_tag_invalid":
        ctx = err.get("ctx") or {}
        tags = str(ctx.get("expected_tags", "")).replace("'", "")  # type: ignore[union-attr]
        tag = str(ctx.get("tag", value))  # type: ignore[union-attr]
        return Problem(f"{path}.type", f"expected one of {tags}; got {show(tag)}{suggest(tag, tags.split(', '))}")
    if kind == "missing":
        return Problem(path, "required key is missing", fix=f"add `{key}:` (see docs/CONFIG.md)")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        ctx = err.get("ctx") or {}
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values())) if ctx else "?"  # type: ignore[union-attr]
        return Problem(path, f"expected a number {op} {bound}, got {show(value)}")
    if kind in EXPECTED:
        return Problem(path, f"expected {EXPECTED[kind]}, got {show(value)}")
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return Problem(path, message)
    return Problem(path, f"{message[0].lower()}{message[1:]}, got {show(value)}")


def problems_from(error: ValidationError) -> list[Problem]:
    """All problems of a validation error, de-duplicated (unions can report one mistake several times)."""
    seen: set[tuple[str, str]] = set()
    out: list[Problem] = []
    for err in error.errors():
        problem = _problem(err)  # type: ignore[arg-type]
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            out.append(problem)
    return out
