"""Calling the rewards on a batch of completions, with TRL 1.16's convention
(``GRPOTrainer._calculate_rewards``) so a TRL reward function works unchanged:

- each function gets ``prompts=``, ``completions=``, ``completion_ids=`` and every other column of the
  rows by keyword (the columns named prompt, completion and completion_ids are not passed twice), plus
  the trainer's ``extras`` (TRL passes ``trainer_state``, ``log_extra``, ``log_metric``);
- it returns one float or None per completion; None becomes NaN (the reward does not apply there);
- the total is the weighted sum over the rewards that apply (nansum); a completion no reward applies to
  has a NaN total (TRL marks it unscorable: no advantage), and a warning shows its row;
- an async reward is awaited.

Torch-free: plain lists of floats, which the trainer turns into a tensor.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from llmft.errors import LlmftError, TrainingError
from llmft.rewards.build import Reward

log = logging.getLogger("llmft.rewards")
NOT_PASSED = ("prompt", "completion", "completion_ids")  # TRL's: these columns are never keywords
_SHOWN = 200  # characters of a prompt an error repeats


class Scores(NamedTuple):
    """``per_function[i][j]``: reward i of completion j (NaN: None); ``total[j]``: their weighted sum."""

    per_function: list[list[float]]
    total: list[float]


def score(
    rewards: Sequence[Reward],
    prompts: Sequence[object],
    completions: Sequence[object],
    completion_ids: Sequence[Sequence[int]],
    columns: Mapping[str, Sequence[object]],
    *,
    extras: Mapping[str, object] | None = None,
) -> Scores:
    """Every reward of every completion, and the weighted totals; a reward that raises, returns the wrong
    number of values or a value that is no number stops the run with a TrainingError naming it."""
    kwargs: dict[str, object] = {k: list(v) for k, v in columns.items() if k not in NOT_PASSED}
    kwargs.update(extras or {})
    batch = (list(prompts), list(completions), [list(ids) for ids in completion_ids])
    per_function = [_call(reward, batch, kwargs) for reward in rewards]
    weights = [reward.weight for reward in rewards]
    total = [_weighted([f[j] for f in per_function], weights) for j in range(len(batch[0]))]
    _warn_unscorable(total, per_function, batch, kwargs)
    return Scores(per_function, total)


def _call(reward: Reward, batch: tuple[list[object], ...], kwargs: dict[str, object]) -> list[float]:
    prompts, completions, completion_ids = batch
    try:
        out = reward.func(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
        if inspect.isawaitable(out):
            out = asyncio.run(_awaited(out))
    except LlmftError:
        raise  # llmft's own (a reward model that cannot load) already says what and where
    except Exception as err:  # noqa: BLE001 - the user's function: whatever it raises stops the run, named
        raise _failure(
            reward, f"raised {type(err).__name__}: {err}", prompts[0] if prompts else None
        ) from err
    if isinstance(out, str | bytes) or not hasattr(out, "__iter__"):
        raise _failure(
            reward, f"returned {_short(out)}, not a list of floats", prompts[0] if prompts else None
        )
    values = list(out)  # type: ignore[call-overload]
    if len(values) != len(prompts):
        raise _failure(
            reward,
            f"returned {len(values)} rewards for {len(prompts)} completions (one per completion is needed)",
            prompts[0] if prompts else None,
        )
    return [_number(reward, v, j, prompts[j]) for j, v in enumerate(values)]


async def _awaited(out: object) -> object:
    return await out  # type: ignore[misc]


def _number(reward: Reward, value: object, index: int, prompt: object) -> float:
    """One returned value as a float: None → NaN; anything float() refuses stops the run."""
    if value is None:
        return math.nan
    try:
        if isinstance(value, str | bytes):
            raise TypeError
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        what = f"returned {_short(value)} for completion {index}, not a float or None"
        raise _failure(reward, what, prompt, "its prompt") from None


def _weighted(values: Sequence[float], weights: Sequence[float]) -> float:
    """nansum of value × weight; NaN when every value is NaN (no reward applies: unscorable)."""
    terms = [v * w for v, w in zip(values, weights, strict=True) if not math.isnan(v)]
    return math.fsum(terms) if terms else math.nan


def _warn_unscorable(
    total: list[float],
    per_function: list[list[float]],
    batch: tuple[list[object], ...],
    kwargs: dict[str, object],
) -> None:
    """TRL's warning: the first completion for which every reward returned None, with its row."""
    if not per_function:
        return
    row = next((j for j, t in enumerate(total) if math.isnan(t)), None)
    if row is None:
        return
    shown = {k: v[row] for k, v in kwargs.items() if isinstance(v, list) and len(v) == len(total)}
    shown.update(prompt=batch[0][row], completion=batch[1][row])
    log.warning(
        "All reward functions returned None for the following kwargs:\n%s\n"
        "Please ensure that at least one reward function returns a valid reward.",
        shown,
    )


def _failure(
    reward: Reward, what: str, prompt: object, whose: str = "the batch's first prompt"
) -> TrainingError:
    label = f"`{reward.name}`" + (
        f" (`{reward.reference}`)" if reward.reference not in ("", reward.name) else ""
    )
    return TrainingError(
        f"reward {label} {what}; {whose}: {_short(prompt)}",
        fix="fix the function (return one float, or None where it does not apply, per completion) and "
        "check it on this prompt",
        where=reward.where or None,
    )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
