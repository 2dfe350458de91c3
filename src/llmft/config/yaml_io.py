"""Reading YAML and JSON config text into plain data, with the line of every key.

PyYAML follows YAML 1.1, where `1e-5` is a string; configs write learning rates that way, so the loader
here also resolves such numbers as floats. Line numbers come from the YAML node tree; JSON is parsed by
``json`` (for its precise syntax errors) and its lines are read from the same node tree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from llmft.errors import ConfigError

KeyPath = tuple[str, ...]


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader that reads `1e-5`, `5E+3` and `.5` as floats (YAML 1.2 behaviour)."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_value(text: str) -> object:
    """Parse one override value the way the config file would (numbers, bools, lists, null)."""
    try:
        return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - ConfigLoader is a SafeLoader
    except yaml.YAMLError:
        return text


def _line_index(text: str) -> dict[KeyPath, int]:
    """Map each key path to its 1-based line. Best effort: text that YAML cannot compose gives {}."""
    try:
        root = yaml.compose(text, Loader=ConfigLoader)  # noqa: S506
    except yaml.YAMLError:
        return {}
    lines: dict[KeyPath, int] = {}

    def walk(node: yaml.Node, path: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = (*path, str(key_node.value))
                lines[child] = key_node.start_mark.line + 1
                walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = (*path, str(i))
                lines[child] = item.start_mark.line + 1
                walk(item, child)

    if root is not None:
        walk(root, ())
    return lines


def _parse_json(text: str, source: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        hint = "remove the trailing comma" if re.search(r",\s*[}\]]", text) else "check the JSON syntax"
        raise ConfigError(
            f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}",
            source=f"{source}:{err.lineno}",
            fix=f"{hint} (JSON allows no comments or trailing commas; YAML is more forgiving)",
        ) from None


def _parse_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=ConfigLoader)  # noqa: S506
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(
            f"invalid YAML: {problem}",
            source=f"{source}{line}",
            fix="check indentation (spaces, not tabs) and that every `key: value` has a space after the colon",
        ) from None


def read_config_text(path: Path) -> tuple[dict[str, object], dict[KeyPath, int]]:
    """Read a config file into a dict plus a key-path → line map. Raises ConfigError with file:line."""
    source = str(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}", fix="check the path (relative to where you run llmft)")
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a config file", fix="pass a .yaml or .json file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"not UTF-8 text (byte {err.start})", source=source, fix="save the config as UTF-8"
        ) from None
    if not text.strip():
        raise ConfigError("the config file is empty", source=source, fix="start from a file in configs/")
    data = _parse_json(text, source) if path.suffix.lower() == ".json" else _parse_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(
            f"the top level must be a mapping of sections (data, model, training, ...), got {type_name(data)}",
            source=source,
            fix="write `key: value` pairs at the top level",
        )
    return data, _line_index(text)


def type_name(value: object) -> str:
    """A user-facing name for a parsed value's type."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
