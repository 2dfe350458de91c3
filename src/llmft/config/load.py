"""Config file + dotted overrides → validated ``RunConfig``, with every problem collected.

Order: read (YAML/JSON, with lines) → normalise legacy spellings → resolve relative paths against the
config file's folder → apply ``a.b.c=value`` overrides (normalised again, so legacy names work there
too) → validate the schema → cross-section checks. Nothing here imports torch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from llmft.config.checks import check_config
from llmft.config.legacy import normalise_legacy
from llmft.config.render import problems_from
from llmft.config.schema import RunConfig
from llmft.config.yaml_io import KeyPath, parse_value, read_config_text
from llmft.errors import ConfigError, Problem

# Keys whose values are file paths; relative values are taken relative to the config file.
PATH_KEYS: tuple[KeyPath, ...] = (
    ("output_dir",),
    ("data", "dataset", "train_file"),
    ("data", "dataset", "validation_file"),
    ("data", "dataset", "test_file"),
    ("data", "dataset", "dir"),
    ("data", "dataset", "path"),
)
# Keys that may be a local path or a Hub id: resolved only when the path exists next to the config.
MAYBE_PATH_KEYS: tuple[KeyPath, ...] = (("model", "name_or_path"), ("data", "tokenization", "tokenizer"))


@dataclass
class LoadedConfig:
    """A validated config (or None) plus the problems, notices and warnings found on the way."""

    config: RunConfig | None
    problems: list[Problem] = field(default_factory=list)
    source: str | None = None
    raw: dict[str, object] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def notices(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]


def _get(data: dict[str, object], path: KeyPath) -> object:
    node: object = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _set(data: dict[str, object], path: KeyPath, value: object) -> None:
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def resolve_paths(data: dict[str, object], base: Path) -> None:
    """Make file paths absolute relative to the config's folder (as written in the file, before overrides)."""
    for path in PATH_KEYS:
        value = _get(data, path)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            _set(data, path, str((base / value).resolve()))
    for path in MAYBE_PATH_KEYS:
        value = _get(data, path)
        if isinstance(value, str) and value and (base / value).exists() and not Path(value).is_absolute():
            _set(data, path, str((base / value).resolve()))


def parse_override(text: str) -> tuple[KeyPath, object]:
    """``training.learning_rate=1e-4`` → (("training", "learning_rate"), 0.0001)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"override `{text}` is not of the form key.path=value",
            fix="write e.g. training.learning_rate=1e-4 model.adapter.r=16",
        )
    return tuple(key.split(".")), parse_value(value)


def apply_overrides(data: dict[str, object], overrides: list[str]) -> None:
    for text in overrides:
        path, value = parse_override(text)
        _set(data, path, value)


def _locate(problems: list[Problem], lines: dict[KeyPath, int], aliases: dict[str, str], source: str) -> list[Problem]:
    """Attach ``file:line`` to each problem whose key (or nearest parent) has a known line."""
    out = []
    for problem in problems:
        path = aliases.get(problem.path, problem.path)
        parts = tuple(path.split(".")) if path else ()
        line = None
        while parts and line is None:
            line = lines.get(parts)
            parts = parts[:-1]
        location = f"{source}:{line}" if line is not None else problem.location
        out.append(Problem(problem.path, problem.message, problem.fix, problem.severity, location))
    return out


def validate_dict(raw: dict[str, object]) -> tuple[RunConfig | None, list[Problem]]:
    """Schema validation and cross-section checks of an already normalised dict."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as err:
        return None, problems_from(err)
    return config, check_config(config, raw)


def inspect_config(path: str | Path | None, overrides: list[str] | None = None) -> LoadedConfig:
    """Load and check a config, collecting every problem instead of stopping at the first.

    Raises ConfigError only when the file cannot be read or parsed at all (nothing else can be checked).
    """
    overrides = overrides or []
    lines: dict[KeyPath, int] = {}
    source = str(path) if path is not None else "<overrides>"
    if path is not None:
        raw, lines = read_config_text(Path(path))
        resolve_paths(raw, Path(path).resolve().parent)
    else:
        raw = {}
    state = normalise_legacy(raw)
    apply_overrides(state.data, overrides)
    again = normalise_legacy(state.data)
    problems = state.problems + again.problems
    aliases = {**state.aliases, **again.aliases}
    raw_copy = copy.deepcopy(again.data)
    config, found = validate_dict(again.data)
    problems = _locate(problems + found, lines, aliases, source)
    if any(p.severity == "error" for p in problems):
        config = None
    return LoadedConfig(config=config, problems=problems, source=source, raw=raw_copy)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Load a config or raise one ConfigError listing every problem found."""
    loaded = inspect_config(path, overrides)
    if loaded.config is None:
        raise ConfigError("invalid config", problems=loaded.problems, source=loaded.source)
    return loaded.config
