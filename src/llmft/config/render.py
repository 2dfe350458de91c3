"""Turn pydantic's validation errors into problems a person can act on.

Each problem names the dotted path, what was expected, what was found, and a fix (``fixes.py``); for
unknown keys and enum values, the message names the nearest valid spelling (``did you mean``).
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from typing import Literal, NamedTuple, get_args, get_origin

from pydantic import BaseModel, ValidationError

from llmft.config import fixes
from llmft.config.legacy import LEGACY_KEYS, LEGACY_VALUES, modern_path
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
        str(t)
        for m in _union_members(annotation)
        if "type" in m.model_fields  # an optional section (`X | None`) has no tag
        for t in get_args(m.model_fields["type"].annotation)
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


def nearest(word: str, options: list[str], aliases: dict[str, str] | None = None) -> str | None:
    """The nearest option; a near legacy alias gives what it stands for (``adamw_torchh`` → ``adamw``)."""
    aliases = aliases or {}
    near = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    near += difflib.get_close_matches(word, list(aliases), n=1, cutoff=0.8)  # "adamw_torchh"
    if not near:
        return None
    best = max(near, key=lambda m: difflib.SequenceMatcher(None, word, m).ratio())  # first of equals
    return aliases.get(best, best)


def suggest(word: str, options: list[str], aliases: dict[str, str] | None = None) -> str:
    """`` (did you mean `x`?)`` for the nearest option, else nothing."""
    match = nearest(word, options, aliases)
    return f" (did you mean `{match}`?)" if match else ""


def modern_key(section: str, legacy_key: str) -> str | None:
    """The dotted path a legacy key is read as (``model.lora_r`` → ``model.adapter.r``), if it has one."""
    return modern_path(section, legacy_key)


def _owners(display: list[str], key: str) -> list[str]:
    """The other kinds of a section union (adapter types) that have ``key``: `r` belongs to lora, qlora."""
    parent = walk_loc(tuple(display[:-1])) if len(display) > 1 else None
    if parent is None or parent.model is None or parent.key not in parent.model.model_fields:
        return []
    members = _union_members(parent.model.model_fields[parent.key].annotation)  # type: ignore[index]
    return [
        str(get_args(m.model_fields["type"].annotation)[0])
        for m in members
        if key in m.model_fields and "type" in m.model_fields
    ]


def _bound(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _sections_at(model: type[BaseModel] | None, key: str | None) -> list[type[BaseModel]]:
    """The section class(es) a key holds: one, the kinds of a union (adapters), or none (a dict field)."""
    if model is None:
        return []
    field = model.model_fields.get(str(key))
    if field is None:  # the location went through a union tag: ``model`` is the section itself
        return [model]
    inner = _model_in(field.annotation, None)
    return _union_members(field.annotation) or ([inner] if inner is not None else [])


def _problem(err: dict[str, object]) -> Problem:
    loc = tuple(err["loc"])  # type: ignore[arg-type]
    kind = str(err["type"])
    value = err.get("input")
    model, key, display, _ = walk_loc(loc)
    path = ".".join(display)
    name = display[-1] if display else str(key)
    if display and is_secret_key(str(display[-1])):  # a token is never repeated back, even a malformed one
        value = f"<{type(value).__name__}, not shown>"
    if kind == "extra_forbidden":
        section = ".".join(display[:-1])
        options = list(model.model_fields) if model is not None else []
        match = nearest(str(key), options + list(LEGACY_KEYS.get(section, ())))
        modern = modern_key(section, match) if match and match not in options else None
        if modern is not None and modern.rpartition(".")[2] == key:  # `alpha` is not `lora_alpha`'s typo
            match = modern = None
        hint = f" (did you mean `{match}`?)" if match else ""
        owners = _owners(display, str(key)) if match is None else []
        fix = fixes.unknown_key(str(key), section, options, match, modern, owners)
        return Problem(path, f"unknown key{hint}", fix=fix)
    if kind in ("literal_error", "enum"):
        choices = literal_choices(model, key) or _expected_choices(err)
        match = nearest(str(value), choices, LEGACY_VALUES.get(path))
        hint = f" (did you mean `{match}`?)" if match else ""
        fix = fixes.choice(choices, match)
        return Problem(path, f"expected one of {', '.join(choices)}; got {show(value)}{hint}", fix=fix)
    if kind == "union_tag_invalid":
        ctx = err.get("ctx") or {}
        tags = str(ctx.get("expected_tags", "")).replace("'", "")  # type: ignore[union-attr]
        tag = str(ctx.get("tag", value))  # type: ignore[union-attr]
        match = nearest(tag, tags.split(", "), LEGACY_VALUES.get(f"{path}.type"))
        hint = f" (did you mean `{match}`?)" if match else ""
        fix = fixes.choice(tags.split(", "), match)
        return Problem(f"{path}.type", f"expected one of {tags}; got {show(tag)}{hint}", fix=fix)
    if kind == "missing":
        fix = fixes.missing(str(key), ".".join(display[:-1]), model)
        return Problem(path, "required key is missing", fix=fix)
    if kind in fixes.KIND_OPS:
        ctx = err.get("ctx") or {}
        op = fixes.OPS[fixes.KIND_OPS[kind]]
        raw_bound = next(iter(ctx.values())) if ctx else None  # type: ignore[union-attr]
        bound = _bound(raw_bound) if ctx else "?"
        fix = fixes.out_of_range(kind, raw_bound, model, key, path)
        return Problem(path, f"expected a number {op} {bound}, got {show(value)}", fix=fix)
    if kind in EXPECTED:
        if EXPECTED[kind].startswith("a mapping"):
            sections = _sections_at(model, key)
            fix = fixes.mapping(name, value, path, sections, dict_field=not sections)
        else:
            fix = fixes.wrong_type(kind, name, value, model, key, path)
            fix = fix or fixes.generic(name, path, model, key)
        return Problem(path, f"expected {EXPECTED[kind]}, got {show(value)}", fix=fix)
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        error = (err.get("ctx") or {}).get("error")  # type: ignore[union-attr]
        return Problem(path, message, fix=getattr(error, "fix", None) or f"see `{path}` in docs/CONFIG.md")
    fix = fixes.generic(name, path, model, key)
    return Problem(path, f"{message[0].lower()}{message[1:]}, got {show(value)}", fix=fix)


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
            fix = first.fix if "(did you mean" in first.message else f"{first.fix}; or {problem.fix}"
            merged[problem.path] = Problem(first.path, f"{head}, or {wanted}{sep}{tail}", fix)
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
