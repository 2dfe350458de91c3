"""Reading YAML and JSON config text into plain data, with the line of every key.

PyYAML follows YAML 1.1, where `1e-5` is a string; configs write learning rates that way, so the loader
here also resolves such numbers as floats. Line numbers come from the YAML node tree; JSON is parsed by
``json`` (for its precise syntax errors) and its lines are read from the same node tree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from llmft.errors import ConfigError

KeyPath = tuple[str, ...]


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars: `1e-5` is a float, and only true/false are booleans.

    YAML 1.1 reads `no`, `off`, `yes`, `on` as booleans, which turns `eval_strategy: no` into `false`.
    """


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


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
    except (yaml.YAMLError, ValueError):  # ValueError: an integer of more than 4300 digits
        return text


def _line_index(text: str) -> tuple[dict[KeyPath, int], list[tuple[KeyPath, int, int]]]:
    """Map each key path to its 1-based line, and list keys written twice as (path, first line, line).

    Best effort: text that YAML cannot compose gives nothing.
    """
    try:
        root = yaml.compose(text, Loader=ConfigLoader)  # noqa: S506
    except yaml.YAMLError:
        return {}, []
    lines: dict[KeyPath, int] = {}
    duplicates: list[tuple[KeyPath, int, int]] = []

    def walk(node: yaml.Node, path: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                child = (*path, str(key_node.value))
                line = key_node.start_mark.line + 1
                if child[-1] in seen and child[-1] != "<<":
                    duplicates.append((child, lines[child], line))
                seen.add(child[-1])
                lines[child] = line
                walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = (*path, str(i))
                lines[child] = item.start_mark.line + 1
                walk(item, child)

    if root is not None:
        walk(root, ())
    return lines, duplicates


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
    except ValueError as err:  # Python refuses integers of more than 4300 digits
        raise _unreadable_value(err, source) from None


def _unreadable_value(err: ValueError, source: str) -> ConfigError:
    """A value the parser recognised but Python cannot build: a 5000-digit integer, a date `2024-13-45`."""
    return ConfigError(
        f"a value in the file cannot be read: {str(err).split(';')[0]}",
        source=source,
        fix="write numbers with fewer digits (or as 1e-5), and quote text that looks like a date",
    )


def _parse_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=ConfigLoader)  # noqa: S506
    except ValueError as err:
        raise _unreadable_value(err, source) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(
            f"invalid YAML: {problem}",
            source=f"{source}{line}",
            fix="check indentation (spaces, not tabs) "
            "and that every `key: value` has a space after the colon",
        ) from None


@dataclass
class ConfigText:
    """A parsed config file: its data, the line of every key, and keys written twice (path, line, line)."""

    data: dict[str, object]
    lines: dict[KeyPath, int] = field(default_factory=dict)
    duplicates: list[tuple[KeyPath, int, int]] = field(default_factory=list)


def read_config_text(path: Path) -> ConfigText:
    """Read a config file into a dict plus a key-path → line map. Raises ConfigError with file:line."""
    source = str(path)
    if not path.exists():
        raise ConfigError(
            f"config file not found: {path}", fix="check the path (relative to where you run llmft)"
        )
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a config file", fix="pass a .yaml or .json file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # -sig: editors on Windows start files with a BOM
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        what = f"byte {data[err.start]:#04x} at line {line} cannot be decoded"
        what = "the file is UTF-16" if utf16 else what
        raise ConfigError(
            f"not UTF-8 text: {what}",
            source=f"{source}:{line}",
            fix='save the config as UTF-8 (an editor\'s "save with encoding", or `iconv -t utf-8`)',
        ) from None
    if not text.strip():
        raise ConfigError("the config file is empty", source=source, fix="start from a file in configs/")
    is_json = path.suffix.lower() == ".json"
    parsed = _parse_json(text, source) if is_json else _parse_yaml(text, source)
    if not isinstance(parsed, dict):
        raise ConfigError(
            "the top level must be a mapping of sections (data, model, training, ...), "
            f"got {type_name(parsed)}",
            source=source,
            fix="write `key: value` pairs at the top level",
        )
    # JSON allows tabs as whitespace where YAML does not; outside strings they are only whitespace.
    lines, duplicates = _line_index(text.replace("\t", " ") if is_json else text)
    return ConfigText(parsed, lines, duplicates)


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
