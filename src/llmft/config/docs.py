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

from llmft.config.schema import RunConfig

HEADER = """# Configuration reference

Generated from the schema by `llmft schema --markdown > docs/CONFIG.md`; do not edit by hand.
Every section rejects unknown keys (with a did-you-mean suggestion). Relative paths are relative to the
config file. Override any key on the command line: `llmft train cfg.yaml training.learning_rate=1e-4`.
`llmft schema` prints the JSON Schema for editor completion.
"""

LEGACY = """
## Legacy layouts

Configs of the framework llmft replaces load unchanged; each legacy key is mapped in one place
(`src/llmft/config/legacy.py`) and reported as a one-line notice with its modern spelling, e.g.

| legacy | modern |
| --- | --- |
| `type: huggingface` (any section) | dropped (implied) |
| `data.preprocessing.type: text` + `max_length` | `format: auto`; `data.tokenization.max_length` |
| `data.tokenization.model_name_or_path` | `data.tokenization.tokenizer` |
| `data.dataset.load_from_disk`, `hf_dataset_name`, `hf_dataset_config`, `hf_dataset_split`, `dataset_format` | `path`, `name`, `subset`, `split.train`, `file_format` |
| `data.dataset.column_mapping`, `filter_columns` | `data.preprocessing.column_mapping`, `filter_columns` |
| `model.model_type`, `model.adapter.lora_alpha`, `lora_dropout`, `adapter.lora: {r, alpha, dropout}` | `model.task`, `alpha`, `dropout`, flattened |
| `training.num_train_epochs`, `per_device_train_batch_size`, `evaluation_strategy`, `optim`, `fp16` | `epochs`, `batch_size`, `eval_strategy`, `optimizer`, `mixed_precision` |
| `training.optimizer: {name, learning_rate, weight_decay, beta1, beta2}` | `optimizer`, `learning_rate`, `weight_decay`, `adam_beta1`, `adam_beta2` |
| `training.lr_scheduler: {name, num_warmup_steps}` | `lr_scheduler`, `warmup_steps` |
| `hpo.type`/`strategy: grid_search`, `max_evals`/`num_samples`, `search_space`, `max_concurrent_trials`, `scheduler` | `backend: grid`, `max_trials`, `parameters`, `parallel`, `pruner` |
| top-level `ray_tune: {...}` | `hpo` with `backend: ray` |
"""


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
    lines.append(LEGACY)
    return "\n".join(lines).rstrip() + "\n"
