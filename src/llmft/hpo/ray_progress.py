"""Ray Tune's trial events, passed on to the search's progress display (imported only with Ray installed).

Tune pickles its callbacks with the experiment (to resume it); the progress display holds a console and
locks, so the callback holds only a key (the search's output directory) into this module's registry: a
search resumed in a new process registers its display under the same key, and the restored callback finds
it. Where the key is unknown, the callback does nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from ray import tune

from llmft.hpo.progress import SearchProgress
from llmft.hpo.trial import TrialRecord

Describe = Callable[[object, bool], TrialRecord]
Number = Callable[[object], int]
_LISTENERS: dict[str, tuple[SearchProgress, Describe, Number]] = {}


class ToProgress(tune.Callback):
    def __init__(self, key: str, events: SearchProgress, describe: Describe, number: Number) -> None:
        self.key = key
        _LISTENERS[key] = (events, describe, number)

    def __getstate__(self) -> dict[str, str]:
        return {"key": self.key}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.key = state["key"]

    def on_trial_start(self, iteration: int, trials: list, trial: object, **info: object) -> None:
        if self.key in _LISTENERS:
            events, _, number = _LISTENERS[self.key]
            events.started(number(trial))

    def on_trial_complete(self, iteration: int, trials: list, trial: object, **info: object) -> None:
        self._ended(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: object, **info: object) -> None:
        self._ended(trial, failed=True)

    def _ended(self, trial: object, *, failed: bool) -> None:
        if self.key in _LISTENERS:
            events, describe, _ = _LISTENERS[self.key]
            events.finished_trial(describe(trial, failed))

    def close(self) -> None:
        _LISTENERS.pop(self.key, None)
