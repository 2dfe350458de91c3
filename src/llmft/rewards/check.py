"""``llmft validate``'s check of ``training.rl.rewards``, torch-free: each entry names a built-in with
arguments it takes, or a user function that exists and can be called with TRL's reward convention.

Files are parsed, never run; modules are located without being imported, and imported only when their
source cannot say what the name is (refs.py). Every problem comes back, each with its dotted path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from llmft.errors import Problem
from llmft.rewards.args import Issue, builtin_issues, unknown_builtin
from llmft.rewards.builtins import BUILTINS
from llmft.rewards.refs import Ref, RefProblem, find_static, load, parse_ref
from llmft.rewards.signature import FIX, call_problems, from_callable

PATH = "training.rl.rewards"  # where the entries live in the config


class RewardEntry(Protocol):
    """One entry of ``training.rl.rewards`` (the schema's model, or :class:`RewardSpec`)."""

    @property
    def function(self) -> str: ...

    @property
    def weight(self) -> float: ...

    @property
    def args(self) -> Mapping[str, object] | None: ...


@dataclass(frozen=True)
class RewardSpec:
    """A reward entry outside a config (tests, the Python API)."""

    function: str
    weight: float = 1.0
    args: Mapping[str, object] = field(default_factory=dict)


def check_reward_refs(
    entries: Sequence[RewardEntry], config_dir: str | Path, columns: Sequence[str] | None = None
) -> list[Problem]:
    """Every problem of the entries. ``config_dir``: the config file's folder, which file references and
    the reward_model's ``run`` are relative to; ``columns``: the data's, when known (a function without
    **kwargs must then name each, and may require only those)."""
    return [
        p
        for i, entry in enumerate(entries)
        for p in entry_problems(entry, f"{PATH}[{i}]", Path(config_dir), columns)
    ]


def entry_problems(
    entry: RewardEntry, where: str, config_dir: Path, columns: Sequence[str] | None
) -> list[Problem]:
    try:
        ref = parse_ref(entry.function)
    except RefProblem as err:
        return [Problem(f"{where}.function", err.message, err.fix)]
    args = dict(entry.args or {})
    if ref is None:
        if entry.function not in BUILTINS:
            return [_problem(where, unknown_builtin(entry.function))]
        return [_problem(where, issue) for issue in builtin_issues(entry.function, args, config_dir)]
    if args:
        return [
            Problem(
                f"{where}.args",
                f"`args` are for built-in rewards; `{entry.function}` is called with the data's columns",
                fix="remove `args` and set the values inside the function (or read them from a column)",
            )
        ]
    return ref_problems(ref, f"{where}.function", config_dir, columns)


def ref_problems(ref: Ref, where: str, config_dir: Path, columns: Sequence[str] | None) -> list[Problem]:
    """The reference found and callable as TRL calls rewards (a notice when only the run can tell)."""
    label = f"reward `{ref.target}:{ref.name}`"
    try:
        found = find_static(ref, config_dir)
        params, location = found.params, found.location
        if params is None and not ref.is_file:  # a module's source cannot tell: import it to ask
            params = from_callable(load(ref, config_dir))
    except RefProblem as err:
        return [Problem(where, err.message, err.fix, location=err.location)]
    if params is None:
        message = f"{label} is made by {found.how}, so its signature is checked when the run starts"
        return [Problem(where, message, severity="notice", location=location)]
    errors = [Problem(where, f"{label} {t}", FIX, location=location) for t in call_problems(params, columns)]
    if errors or params.var_keyword or columns is not None:
        return errors
    message = (
        f"{label} takes no **kwargs, so it works only if the data has no column besides prompt and the "
        "trainer passes nothing else by keyword"
    )
    return [Problem(where, message, FIX, severity="notice", location=location)]


def _problem(where: str, issue: Issue) -> Problem:
    place, message, fix = issue
    return Problem(f"{where}.{place}", message, fix)
