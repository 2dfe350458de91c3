"""``training.rl.rewards`` → the reward callables a GRPO/RLOO run scores with.

The static check runs first (the same rules as ``llmft validate``, so the run refuses what validate
refuses, all problems at once), then user functions are loaded and their real signatures checked again:
a function made by a call or a decorator is only seen now.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmft.errors import ConfigError, Problem
from llmft.rewards.args import make_builtin
from llmft.rewards.check import PATH, RewardEntry, check_reward_refs
from llmft.rewards.refs import RefProblem, load, parse_ref
from llmft.rewards.signature import FIX, call_problems, from_callable

RewardFunc = Callable[..., object]


@dataclass(frozen=True)
class Reward:
    """One reward ready to call: ``name`` is its metric name (``rewards/{name}/mean``), as TRL names it."""

    name: str
    func: RewardFunc
    weight: float = 1.0
    where: str = ""  # the entry's dotted path, for errors
    reference: str = ""  # the entry's `function`, as written


def build_rewards(entries: Sequence[RewardEntry], config_dir: str | Path) -> list[Reward]:
    """The entries as rewards; a ConfigError listing every problem when any entry is wrong."""
    base = Path(config_dir)
    problems = [p for p in check_reward_refs(entries, base) if p.severity == "error"]
    if problems:
        raise ConfigError("invalid rewards", problems=problems)
    rewards = [_build(entry, f"{PATH}[{i}]", base, problems) for i, entry in enumerate(entries)]
    if problems:
        raise ConfigError("invalid rewards", problems=problems)
    return [r for r in rewards if r is not None]


def _build(entry: RewardEntry, where: str, base: Path, problems: list[Problem]) -> Reward | None:
    weight = float(entry.weight)
    ref = parse_ref(entry.function)
    if ref is None:
        func = make_builtin(entry.function, dict(entry.args or {}), base)
        return Reward(entry.function, func, weight, where, entry.function)  # type: ignore[arg-type]
    try:
        func = load(ref, base)
    except RefProblem as err:
        problems.append(Problem(f"{where}.function", err.message, err.fix, location=err.location))
        return None
    params = from_callable(func)
    for text in call_problems(params) if params else []:
        problems.append(Problem(f"{where}.function", f"reward `{entry.function}` {text}", FIX))
    return Reward(callable_name(func), func, weight, where, entry.function)


def callable_name(func: RewardFunc) -> str:
    """TRL's ``get_callable_name``: partials unwrapped, then ``__name__``, else the class's name."""
    while isinstance(func, functools.partial):
        func = func.func
    return str(getattr(func, "__name__", type(func).__name__))
