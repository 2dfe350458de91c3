"""Whether a function can be called the way TRL calls a reward, read from its source (``ast``, nothing
executed) or from the function itself (``inspect``): one rule for both.

TRL's GRPOTrainer calls ``func(prompts=..., completions=..., completion_ids=..., **columns)``: every
argument by keyword, every dataset column other than prompt/completion/completion_ids too. So a reward
either takes ``**kwargs`` or names each keyword it will get; a parameter without a default must be one of
them; a positional-only one can never be given.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ALWAYS = ("prompts", "completions", "completion_ids")  # what TRL passes whatever the data


@dataclass(frozen=True)
class Params:
    """The parts of a signature the rule needs."""

    named: tuple[str, ...]  # parameters that can be passed by keyword
    required: tuple[str, ...]  # ... of them without a default
    positional_only: tuple[str, ...]  # required positional-only parameters
    var_keyword: bool  # takes **kwargs


def from_ast(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> Params:
    args = node.args
    plain = args.posonlyargs + args.args
    # defaults belong to the last len(defaults) of the positional parameters
    required_plain = [a.arg for a in plain[: len(plain) - len(args.defaults)]]
    positional_only = tuple(a.arg for a in args.posonlyargs if a.arg in required_plain)
    kw_required = [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    named = tuple(a.arg for a in args.args + args.kwonlyargs)
    required = tuple(n for n in required_plain + kw_required if n not in positional_only)
    return Params(named, required, positional_only, args.kwarg is not None)


def from_callable(func: Callable[..., object]) -> Params | None:
    """The callable's parameters; None when Python cannot tell (some builtins and C functions)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    kinds = inspect.Parameter
    params = list(signature.parameters.values())
    keyword = [p for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)]
    return Params(
        named=tuple(p.name for p in keyword),
        required=tuple(p.name for p in keyword if p.default is p.empty),
        positional_only=tuple(
            p.name for p in params if p.kind == kinds.POSITIONAL_ONLY and p.default is p.empty
        ),
        var_keyword=any(p.kind == kinds.VAR_KEYWORD for p in params),
    )


def call_problems(params: Params, columns: Sequence[str] | None = None) -> list[str]:
    """Why TRL's call would fail (empty: it works). ``columns``: the data's, when known."""
    if params.positional_only:
        return [
            f"takes `{params.positional_only[0]}` as a positional-only parameter, but rewards are called "
            "with keywords only (prompts=, completions=, completion_ids=, one per column)"
        ]
    passed = list(ALWAYS) + list(columns or [])
    problems = []
    if not params.var_keyword:
        missing = [n for n in passed if n not in params.named]
        if missing:
            what = "prompts, completions, completion_ids" + (" and every column" if columns is None else "")
            problems.append(
                f"does not take **kwargs, and it is passed {what} by keyword: it has no parameter "
                + ", ".join(f"`{n}`" for n in missing)
            )
    if columns is not None:
        unknown = [n for n in params.required if n not in passed]
        if unknown:
            problems.append(
                f"requires {', '.join(f'`{n}`' for n in unknown)}, which no column of the data is "
                f"(columns: {', '.join(columns) or 'none'})"
            )
    return problems


FIX = "give it TRL's signature: def reward(completions, **kwargs) (add the columns it reads by name)"
