"""docs/CONFIG.md, generated from the schema's field descriptions (`llmft schema --markdown`).

A test fails when the committed file differs from what this produces, so the docs cannot drift.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from llmft.config.legacy import legacy_markdown
from llmft.config.optimizers import OPTIMIZER_NAMES
from llmft.config.schema import RunConfig

HEADER = """# Configuration reference

Generated from the schema by `llmft schema --markdown > docs/CONFIG.md`; do not edit by hand.
Every section rejects unknown keys (with a did-you-mean suggestion). Relative paths are relative to the
config file (in an override, to the current folder); `llmft validate` checks that the data files and the
local model folders named are there (a Hub id such as `org/name` is not taken for a path). Override any
key on the command line: `llmft train cfg.yaml training.learning_rate=1e-4`; a problem an override causes
is reported at `(command line)`. `llmft schema` prints the JSON Schema for editor completion.
"""

LEGACY = """
## Legacy layouts

Configs of the framework llmft replaces load unchanged. Each legacy spelling is read as its modern one in
one place, the table in `src/llmft/config/legacy.py` (this section is generated from it), and reported as a
one-line notice naming the modern spelling; what cannot be mapped with certainty is an error saying what
to write. Steps apply top to bottom.

"""

OPTIMIZERS = """
### Optimizer names

`training.optimizer` (and the Hugging Face key `training.optim`) accept llmft's names and every Hugging
Face `TrainingArguments.optim` name: one that means what llmft runs is read as llmft's name with a notice;
one llmft does not implement is refused, saying which it does.

"""


def _optimizer_markdown() -> str:
    rows = ["| name | llmft runs | note |", "| --- | --- | --- |"]
    for name, entry in OPTIMIZER_NAMES.items():
        runs = f"`{entry.runs}`" if entry.runs else "not implemented"
        rows.append(f"| `{name}` | {runs} | {entry.note} |")
    return "\n".join(rows)


def _type_name(annotation: object) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    if origin is typing.Annotated:
        return _type_name(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation) if a is not type(None)) + (
            " or null" if type(None) in get_args(annotation) else ""
        )
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(annotation))}]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: object) -> str:
    default = getattr(field, "default", PydanticUndefined)
    if default is PydanticUndefined:
        return "required" if getattr(field, "default_factory", None) is None else "(section defaults)"
    return f"`{json.dumps(default)}`"


def _sections(model: type[BaseModel], prefix: str) -> list[tuple[str, type[BaseModel]]]:
    found = [(prefix, model)]
    for name, field in model.model_fields.items():
        for member in _members(field.annotation):
            tag = member.model_fields.get("type")
            label = f"{prefix}{name}" + (
                f" (type: {tag.default})" if tag is not None and len(_members(field.annotation)) > 1 else ""
            )
            found += _sections(member, label + ".") if not label.endswith(")") else [(label + ".", member)]
    return found


def _members(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        out += _members(arg)
    return out


def render_config_markdown() -> str:
    lines = [HEADER]
    for prefix, model in _sections(RunConfig, ""):
        title = prefix.rstrip(".") or "top level"
        lines += [f"\n## `{title}`\n", "| key | type | default | description |", "| --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            if name == "type" and "type:" in title:
                continue
            desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |")
    lines += [LEGACY + legacy_markdown(), OPTIMIZERS + _optimizer_markdown()]
    return "\n".join(lines).rstrip() + "\n"
