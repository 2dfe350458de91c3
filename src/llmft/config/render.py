"""Turn pydantic's validation errors into problems a person can act on.

Each problem names the dotted path, what was expected, what was found, and, for unknown keys and enum
values, the nearest valid spelling (``did you mean``).
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from typing import Literal, NamedTuple, get_args, get_origin

from pydantic import BaseModel, ValidationError

from llmft.config.legacy import LEGACY_KEYS, LEGACY_VALUES
from llmft.config.redact import is_secret_key
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
    "finite_number": "a finite number",
}


def show(value: object) -> str:
    """Repeat a user's value back compactly, JSON style (dates and other YAML oddities as text)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # ValueError: an integer too long to print
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _model_in(annotation: object, tag: str | None) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation (unions and Annotated unwrapped).

    In a union of sections, ``tag`` (the next key of a path) picks the member whose `type` it is, else the
    first member that has a field of that name (``model.adapter.r`` is a LoRA field).
    """
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
        for model in models:
            if tag is not None and tag in model.model_fields:
                return model
        return models[0] if len(models) == 1 else None
    return None


def _is_plain_union(annotation: object) -> bool:
    """A union of two or more non-section types (``"auto" | list[str]``): pydantic labels each branch."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _is_plain_union(get_args(annotation)[0])
    if origin not in (typing.Union, types.UnionType):
        return False
    members = [a for a in get_args(annotation) if a is not type(None)]
    return len(members) > 1 and all(_model_in(a, None) is None for a in members)


class LocInfo(NamedTuple):
    """Where an error location points: the section class holding ``key``, and the path to show."""

    model: type[BaseModel] | None
    key: str | None
    display: list[str]
    branch: bool = False  # the location went through one branch of a plain union


def walk_loc(loc: tuple[object, ...]) -> LocInfo:
    """Follow an error location through the schema.

    Returns the section class holding the last key, that key, and the display path (union tags and
    union branch labels such as ``list[str]`` dropped).
    """
    model: type[BaseModel] | None = RunConfig
    display: list[str] = []
    branch = False
    i = 0
    key: str | None = None
    loc = tuple(part for part in loc if part != "[key]")  # pydantic marks a bad dict key with "[key]"
    while i < len(loc):
        key = str(loc[i])
        display.append(key)
        if model is None or key not in model.model_fields:
            return LocInfo(model, key, display + [str(x) for x in loc[i + 1 :]], branch)
        if i == len(loc) - 1:
            return LocInfo(model, key, display, branch)
        annotation = model.model_fields[key].annotation
        nxt = str(loc[i + 1])
        inner = _model_in(annotation, nxt)
        if inner is not None and nxt not in inner.model_fields and _is_tag(annotation, nxt):
            i += 1  # skip the discriminator tag pydantic puts in the location
        elif _is_plain_union(annotation):
            i += 1  # skip the branch label ("list[str]")
            branch = True
        if inner is None:
            rest = [str(x) for x in loc[i + 1 :]]
            return LocInfo(None, rest[-1] if rest else key, display + rest, branch)
        model = inner
        i += 1
    return LocInfo(model, key, display, branch)


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


def _expected_choices(err: dict[str, object]) -> list[str]:
    """The allowed values pydantic lists in a literal error (``'a', 'b' or 'c'``)."""
    expected = str((err.get("ctx") or {}).get("expected", ""))  # type: ignore[union-attr]
    return [c.strip().strip("'") for c in re.split(r", | or ", expected) if c.strip()]


def suggest(word: str, options: list[str], aliases: dict[str, str] | None = None) -> str:
    """`` (did you mean `x`?)`` for the nearest option; a near legacy alias suggests what it stands for."""
    aliases = aliases or {}
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    match = match or difflib.get_close_matches(word, list(aliases), n=1, cutoff=0.8)  # "adamw_torchh"
    return f" (did you mean `{aliases.get(match[0], match[0])}`?)" if match else ""


def _bound(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _problem(err: dict[str, object]) -> Problem:
    loc = tuple(err["loc"])  # type: ignore[arg-type]
    kind = str(err["type"])
    value = err.get("input")
    model, key, display, _ = walk_loc(loc)
    path = ".".join(display)
    if display and is_secret_key(str(display[-1])):  # a token is never repeated back, even a malformed one
        value = f"<{type(value).__name__}, not shown>"
    if kind == "extra_forbidden":
        options = list(model.model_fields) if model is not None else []
        legacy = list(LEGACY_KEYS.get(".".join(display[:-1]), ()))
        hint = suggest(str(key), options + legacy)
        fix = f"valid keys here: {', '.join(options)}" if not hint else None
        return Problem(path, f"unknown key{hint}", fix=fix)
    if kind in ("literal_error", "enum"):
        choices = literal_choices(model, key) or _expected_choices(err)
        hint = suggest(str(value), choices, LEGACY_VALUES.get(path))
        return Problem(path, f"expected one of {', '.join(choices)}; got {show(value)}{hint}")
    if kind == "union_tag_invalid":
        ctx = err.get("ctx") or {}
        tags = str(ctx.get("expected_tags", "")).replace("'", "")  # type: ignore[union-attr]
        tag = str(ctx.get("tag", value))  # type: ignore[union-attr]
        hint = suggest(tag, tags.split(", "), LEGACY_VALUES.get(f"{path}.type"))
        return Problem(f"{path}.type", f"expected one of {tags}; got {show(tag)}{hint}")
    if kind == "missing":
        return Problem(path, "required key is missing", fix=f"add `{key}:` (see docs/CONFIG.md)")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        ctx = err.get("ctx") or {}
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[
            kind
        ]
        bound = _bound(next(iter(ctx.values()))) if ctx else "?"  # type: ignore[union-attr]
        return Problem(path, f"expected a number {op} {bound}, got {show(value)}")
    if kind in EXPECTED:
        fix = None
        no_space = isinstance(value, str) and re.match(r"^[\w.-]+:\S", value)
        if EXPECTED[kind].startswith("a mapping") and no_space:
            fix = f"put a space after the colon: `{value.replace(':', ': ', 1)}`"
        return Problem(path, f"expected {EXPECTED[kind]}, got {show(value)}", fix=fix)
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return Problem(path, message)
    return Problem(path, f"{message[0].lower()}{message[1:]}, got {show(value)}")


def _merge_branches(problems: list[tuple[Problem, bool]]) -> list[Problem]:
    """One problem per path for plain unions (``"auto" | list[str]``), whose every branch reports.

    A branch that reached deeper (an item of the list) is the one the user meant; otherwise the
    branches' expectations are joined: ``expected one of auto, all-linear, or a list``.
    """
    branch_paths = {p.path for p, branch in problems if branch}
    deeper = {p for p in branch_paths if any(q.startswith(p + ".") for q in branch_paths)}
    merged: dict[str, Problem] = {}
    out: list[Problem] = []
    for problem, branch in problems:
        if not branch:
            out.append(problem)
        elif problem.path in deeper:
            continue
        elif problem.path in merged:
            first = merged[problem.path]
            wanted = problem.message.removeprefix("expected ").split(", got ")[0].split("; got ")[0]
            head, sep, tail = first.message.rpartition("; got " if "; got " in first.message else ", got ")
            merged[problem.path] = Problem(first.path, f"{head}, or {wanted}{sep}{tail}", first.fix)
            out[out.index(first)] = merged[problem.path]
        else:
            merged[problem.path] = problem
            out.append(problem)
    return out


def problems_from(error: ValidationError, kinds: set[str] | None = None) -> list[Problem]:
    """All problems of a validation error, de-duplicated (unions can report one mistake several times).

    ``kinds`` keeps only errors of those pydantic types (``{"value_error"}``: the section rules).
    """
    seen: set[tuple[str, str]] = set()
    found: list[tuple[Problem, bool]] = []
    for err in error.errors():
        if kinds is not None and err["type"] not in kinds:
            continue
        problem = _problem(err)  # type: ignore[arg-type]
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            found.append((problem, walk_loc(tuple(err["loc"])).branch))
    return _merge_branches(found)
