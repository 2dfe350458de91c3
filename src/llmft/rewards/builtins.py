"""The built-in rewards for verifiable tasks, and their table.

Each built-in is a small dataclass: its fields are the entry's ``args`` (a default makes one optional;
``metadata`` holds its one-line doc and, where it has them, its choices), its docstring's first line is its
doc, ``problems()`` says what is wrong with a set of values, and calling it follows TRL's reward
convention (``prompts``, ``completions``, ``completion_ids``, every other column by keyword; one float or
None per completion), so built-ins and user functions are called alike. ``BUILTINS`` is the one table that
the builder, ``llmft validate`` and the docs read. Torch-free: ``reward_model`` imports torch on first call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from llmft.rewards.reward_model import RewardModel
from llmft.rewards.text import EXTRACTORS, completion_text, normalized, to_number

Score = float | None
Issue = tuple[str, str, str | None]  # (the argument, what is wrong with it, a fix)


def arg(doc: str, choices: Sequence[str] = (), **kwargs: object) -> object:
    """A dataclass field carrying its one-line doc (and choices) for the checks and the docs."""
    return field(metadata={"doc": doc, "choices": tuple(choices)}, **kwargs)  # type: ignore[call-overload]


@dataclass(frozen=True)
class AnswerMatch:
    """1.0 when the completion's answer equals the row's answer column, 0.0 when not, None without one."""

    column: str = arg("the column holding the right answer", default="answer")
    mode: str = arg(
        "exact: the texts equal (space and a final full stop aside); numeric: the numbers within tolerance",
        choices=("exact", "numeric"),
        default="exact",
    )
    tolerance: float = arg("numeric mode: the largest absolute difference that still matches", default=1e-6)
    extract: str = arg("where the completion's answer is", choices=tuple(EXTRACTORS), default="last_number")

    def problems(self) -> list[Issue]:
        return (
            [("tolerance", f"`tolerance` must be >= 0, got {self.tolerance}", None)]
            if self.tolerance < 0
            else []
        )

    def __call__(self, completions: list[object], **kwargs: object) -> list[Score]:
        gold = kwargs.get(self.column)
        if not isinstance(gold, list):
            columns = ", ".join(k for k, v in kwargs.items() if isinstance(v, list)) or "none"
            raise ValueError(
                f"answer_match reads column `{self.column}`, which the data lacks (columns: {columns})"
            )
        return [self.one(completion_text(c), g) for c, g in zip(completions, gold, strict=True)]

    def one(self, text: str, gold: object) -> Score:
        """One completion's reward: None when the row has no answer (nothing to verify against)."""
        if gold is None or not str(gold).strip():
            return None
        found = EXTRACTORS[self.extract][0](text)
        if self.mode == "exact":
            return float(found is not None and normalized(found) == normalized(str(gold)))
        # GSM8K's answer column ends in "#### 42": the gold is its last number (a plain "42" is its own).
        want = to_number(str(gold))
        want = to_number(_last(str(gold))) if want is None else want
        if want is None:
            return None
        got = to_number(found)
        return float(got is not None and abs(got - want) <= self.tolerance)


def _last(text: str) -> str | None:
    return EXTRACTORS["last_number"][0](text)


@dataclass(frozen=True)
class Format:
    """1.0 when the completion matches a regular expression, else 0.0 (e.g. a `<think>...</think>` layout)."""

    pattern: str = arg("the regular expression (Python `re` syntax)")
    match: str = arg(
        "full: the whole completion must match; search: a match anywhere",
        choices=("full", "search"),
        default="full",
    )
    dotall: bool = arg("`.` also matches newlines (reasoning spans lines)", default=True)

    def problems(self) -> list[Issue]:
        try:
            re.compile(self.pattern)
        except re.error as err:
            return [
                (
                    "pattern",
                    f"`pattern` is not a valid regular expression: {err}",
                    "escape literal characters with \\",
                )
            ]
        return []

    def __call__(self, completions: list[object], **kwargs: object) -> list[Score]:
        regex = re.compile(self.pattern, re.DOTALL if self.dotall else 0)
        test = regex.fullmatch if self.match == "full" else regex.search
        return [float(test(completion_text(c)) is not None) for c in completions]


@dataclass(frozen=True)
class Length:
    """A length penalty in [-1, 0]: with `max`, DAPO's soft overlong punishment (TRL's
    get_soft_overlong_punishment); with `target`, -|length - target| / target."""

    max: int | None = arg("the longest completion without penalty: longer gets -1", default=None)
    soft: int = arg("with max: the penalty grows linearly from 0 to -1 over the last `soft` units", default=0)
    target: int | None = arg("the wanted length: the penalty grows linearly with the distance", default=None)
    unit: str = arg(
        "tokens (completion_ids) or chars (the text)", choices=("tokens", "chars"), default="tokens"
    )

    def problems(self) -> list[Issue]:
        if (self.max is None) == (self.target is None):
            return [
                ("max", "`length` needs exactly one of `max` and `target`", "set `max` (a cap) or `target`")
            ]
        if self.target is not None and self.target <= 0:
            return [("target", f"`target` must be > 0, got {self.target}", None)]
        if self.max is not None and not 0 <= self.soft <= self.max:
            return [("soft", f"`soft` must be between 0 and max ({self.max}), got {self.soft}", None)]
        return []

    def __call__(
        self, completions: list[object], completion_ids: list[list[int]] | None = None, **kwargs: object
    ) -> list[Score]:
        if self.unit == "tokens" and completion_ids is None:
            raise ValueError("length with unit `tokens` needs completion_ids")
        sizes = (
            [len(ids) for ids in completion_ids]  # type: ignore[union-attr]
            if self.unit == "tokens"
            else [len(completion_text(c)) for c in completions]
        )
        return [self.one(n) for n in sizes]

    def one(self, n: int) -> float:
        if self.target is not None:
            return max(-1.0, -abs(n - self.target) / self.target)
        limit = int(self.max)  # type: ignore[arg-type]
        if n <= limit - self.soft:
            return 0.0
        return (limit - self.soft - n) / self.soft if n <= limit else -1.0


_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class JsonValid:
    """1.0 when the completion is valid JSON, else 0.0."""

    strip_fences: bool = arg(
        "accept JSON inside one Markdown code fence (three backticks, maybe `json`)", default=True
    )
    require: str = arg("the JSON value's kind", choices=("any", "object", "array"), default="any")

    def problems(self) -> list[Issue]:
        return []

    def __call__(self, completions: list[object], **kwargs: object) -> list[Score]:
        return [self.one(completion_text(c)) for c in completions]

    def one(self, text: str) -> float:
        fenced = _FENCE.match(text) if self.strip_fences else None
        try:
            value = json.loads(fenced.group(1) if fenced else text)
        except ValueError:
            return 0.0
        kinds = {"any": object, "object": dict, "array": list}
        return float(isinstance(value, kinds[self.require]))


# name -> the dataclass: its fields are the args, its docstring's first line the doc.
BUILTINS: dict[str, type] = {
    "answer_match": AnswerMatch,
    "format": Format,
    "length": Length,
    "json_valid": JsonValid,
    "reward_model": RewardModel,
}


def builtin_doc(name: str) -> str:
    """A built-in's one-line doc (its docstring's first sentence, on one line)."""
    doc = BUILTINS[name].__doc__ or ""
    return " ".join(doc.split("\n\n")[0].split())
