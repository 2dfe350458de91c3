"""The kinds of step config/legacy.py's table is made of (a rename, a map of legacy values, a rule with
logic) and the state they work on. Every change is reported: a notice naming the modern spelling, or an
error saying what to write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from llmft.errors import Problem

Raw = dict[str, object]


@dataclass
class Normalised:
    """The normalised dict, what was changed (notices) or refused (errors), and new→old key paths."""

    data: Raw
    problems: list[Problem] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)

    def notice(self, old: str, new: str, detail: str = "") -> None:
        self.aliases[new] = old
        extra = f" ({detail})" if detail else ""
        self.note(old, f"legacy key, read as `{new}`{extra}", f"write `{new}`")

    def note(self, path: str, message: str, fix: str) -> None:
        self.problems.append(Problem(path=path, message=message, fix=fix, severity="notice"))

    def error(self, path: str, message: str, fix: str) -> None:
        self.problems.append(Problem(path=path, message=message, fix=fix))

    def section(self, dotted: str, create: bool = False) -> Raw | None:
        """The dict at a dotted path ("" is the top level); None when absent or not a mapping."""
        node: object = self.data
        for part in [p for p in dotted.split(".") if p]:
            if not isinstance(node, dict):
                return None
            if create and part not in node:
                node[part] = {}
            node = node.get(part)
        return node if isinstance(node, dict) else None


def split(path: str) -> tuple[str, str]:
    """``a.b.c`` → (``a.b``, ``c``)."""
    parent, _, leaf = path.rpartition(".")
    return parent, leaf


@dataclass(frozen=True)
class Rename:
    """A legacy key read as another key (anywhere in the config); two different values are an error."""

    old: str
    new: str
    detail: str = ""
    clash: str = ""  # the message when both are set differently; a generic one when empty

    def apply(self, state: Normalised) -> None:
        old_parent, old_leaf = split(self.old)
        holder = state.section(old_parent)
        if holder is None or old_leaf not in holder:
            return
        new_parent, new_leaf = split(self.new)
        target = state.section(new_parent, create=True)
        if target is None:  # something that is not a mapping is in the way: the schema reports it
            return
        value = holder.pop(old_leaf)
        if new_leaf in target and target[new_leaf] != value:
            message = (
                self.clash or f"both `{self.old}` (legacy) and `{self.new}` are set, to different values"
            )
            state.error(self.old, message, f"keep only `{self.new}`")
            return
        target[new_leaf] = value
        state.notice(self.old, self.new, self.detail)


@dataclass(frozen=True)
class Values:
    """Legacy values of one enum field, read as the modern value (``grid_search`` → ``grid``)."""

    path: str
    table: Mapping[str, str]

    def apply(self, state: Normalised) -> None:
        parent, key = split(self.path)
        sec = state.section(parent)
        value = sec.get(key) if sec is not None else None
        if sec is None or not isinstance(value, str):
            return
        modern = self.table.get(value.lower())
        if modern is not None and modern != value:
            sec[key] = modern
            state.note(self.path, f"legacy value `{value}` read as `{modern}`", f"write `{key}: {modern}`")


@dataclass(frozen=True)
class Rule:
    """A mapping that needs logic: ``keys`` are the legacy key paths it reads, ``modern`` the path they
    become (None: dropped), ``doc`` what docs/CONFIG.md says they become."""

    keys: tuple[str, ...]
    modern: str | None
    doc: str
    apply: Callable[[Normalised], None]
