"""A built-in's ``args`` checked against its dataclass (names, types, choices, its own rules) and turned into
the callable reward. The checks and the builder share this module, so ``llmft validate`` refuses exactly
what starting the run would."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields
from pathlib import Path

from llmft.rewards.builtins import BUILTINS

Issue = tuple[str, str, str | None]  # (where under the entry, what is wrong, fix)
_KINDS = {float: "a number", int: "an integer", str: "text", bool: "true or false", type(None): "null"}


def arg_fields(name: str) -> list[Field[object]]:
    """The built-in's arguments: its dataclass fields set at construction."""
    return [f for f in fields(BUILTINS[name]) if f.init]


def unknown_builtin(name: str) -> Issue:
    near = difflib.get_close_matches(name, list(BUILTINS), n=1)
    hint = f"did you mean `{near[0]}`? " if near else ""
    return (
        "function",
        f"unknown built-in reward `{name}`",
        f"{hint}built-ins: {', '.join(BUILTINS)}; or a function of yours as `path/file.py:function` "
        "(relative to the config file) or `package.module:function`",
    )


def builtin_issues(name: str, args: Mapping[str, object], config_dir: Path) -> list[Issue]:
    """Everything wrong with ``args`` for built-in ``name`` (which must be in BUILTINS)."""
    known = {f.name: f for f in arg_fields(name)}
    issues = [_unknown_arg(name, key, list(known)) for key in args if key not in known]
    hints = typing.get_type_hints(BUILTINS[name])
    for key, spec in known.items():
        if key not in args:
            if spec.default is MISSING and spec.default_factory is MISSING:
                issues.append((f"args.{key}", f"`{name}` needs `{key}`: {spec.metadata['doc']}", None))
            continue
        issues += _value_issues(key, args[key], spec, hints[key])
    if issues:
        return issues
    built = make_builtin(name, args, config_dir)
    return [(f"args.{key}", message, fix) for key, message, fix in built.problems()]  # type: ignore[attr-defined]


def make_builtin(name: str, args: Mapping[str, object], config_dir: Path) -> object:
    """The built-in with ``args`` (already checked); path arguments resolved against the config's folder."""
    paths = {f.name for f in arg_fields(name) if f.metadata.get("path")}
    values = {k: str(config_dir / Path(str(v)).expanduser()) if k in paths else v for k, v in args.items()}
    return BUILTINS[name](**values)


def _unknown_arg(name: str, key: str, known: list[str]) -> Issue:
    near = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean `{near[0]}`? " if near else ""
    return (
        f"args.{key}",
        f"`{name}` has no argument `{key}`",
        f"{hint}its arguments: {', '.join(known) or 'none'}",
    )


def _value_issues(key: str, value: object, spec: Field[object], hint: object) -> list[Issue]:
    where = f"args.{key}"
    if not accepts(hint, value):
        return [(where, f"`{key}` must be {describe(hint)}, got {value!r}", None)]
    choices = spec.metadata.get("choices") or ()
    if choices and value not in choices:
        near = difflib.get_close_matches(str(value), list(choices), n=1)
        hint_text = f"did you mean `{near[0]}`? " if near else ""
        return [(where, f"`{key}` is `{value}`", f"{hint_text}one of: {', '.join(choices)}")]
    return []


def accepts(hint: object, value: object) -> bool:
    """Whether ``value`` (from YAML) fits type ``hint``: an int is a number, a bool is not."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(accepts(option, value) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, int | float)
    return isinstance(hint, type) and isinstance(value, hint)


def describe(hint: object) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(describe(option) for option in typing.get_args(hint))
    return _KINDS.get(hint, str(hint))  # type: ignore[call-overload]
