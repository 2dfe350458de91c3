"""Search progress: trials done, running, failed and pruned, and the best so far.

A rich bar in a terminal; elsewhere (CI, logs) one line per finished trial, which is also what ``say``
gets in both cases, so a log of the search reads the same wherever it ran.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from llmft.hpo.plan import SearchPlan
from llmft.hpo.trial import TrialRecord

Say = Callable[[str], None]


def _stderr(text: str) -> None:
    sys.stderr.write(text + "\n")


def format_params(params: dict[str, object]) -> str:
    return ", ".join(f"{path}={_short(value)}" for path, value in params.items())


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class SearchProgress:
    """Receives trial events from a backend (``started``, ``finished``); a context manager.

    Thread-safe: Ray calls back from its own threads.
    """

    def __init__(self, plan: SearchPlan, say: Say = _stderr, enabled: bool = True) -> None:
        self.plan = plan
        self.say = say
        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.running: set[int] = set()
        self.finished: dict[int, TrialRecord] = {}
        self.best: TrialRecord | None = None
        self._lock = threading.Lock()
        self._bar: RichProgress | None = None
        self._task = None

    def __enter__(self) -> SearchProgress:
        if self.live:
            self._bar = RichProgress(
                TextColumn("[bold]trials"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("trials", total=self.plan.max_trials, stats=self.stats())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)  # type: ignore[arg-type]
            self._bar = None

    def counts(self) -> dict[str, int]:
        states = [r.state for r in self.finished.values()]
        return {
            "done": len(states),
            "running": len(self.running),
            "failed": states.count("failed"),
            "pruned": states.count("pruned"),
        }

    def stats(self) -> str:
        c = self.counts()
        text = f"{c['done']} done, {c['running']} running, {c['failed']} failed, {c['pruned']} pruned"
        if self.best is not None and self.best.value is not None:
            text += f" | best {self.plan.metric}={self.best.value:.4g} (trial {self.best.number})"
        return text

    def started(self, number: int) -> None:
        with self._lock:
            self.running.add(number)
            self._refresh()

    def finished_trial(self, record: TrialRecord, *, earlier: bool = False) -> None:
        """A trial ended (``earlier``: it ended in an earlier session of this search, and is only counted)."""
        with self._lock:
            self.running.discard(record.number)
            if record.number in self.finished:
                return
            self.finished[record.number] = record
            is_best = (
                record.state == "complete"
                and record.value is not None
                and (self.best is None or self.plan.better(record.value, self.best.value))
            )  # type: ignore[arg-type]
            if is_best:
                self.best = record
            if not earlier:
                self.say(self._line(record, is_best))
            self._refresh()

    def _line(self, record: TrialRecord, is_best: bool) -> str:
        took = f" in {record.duration_s:.0f}s" if record.duration_s is not None else ""
        params = format_params(record.params)
        if record.state == "failed":
            return f"trial {record.number} failed{took} ({params}): {record.error}"
        value = f"{self.plan.metric}={record.value:.4g}" if record.value is not None else "no value"
        where = f" at step {record.steps}" if record.state == "pruned" else ""
        mark = "  * best so far" if is_best else ""
        return f"trial {record.number} {record.state}{where}{took}: {value} ({params}){mark}"

    def _refresh(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=len(self.finished), stats=self.stats())  # type: ignore[arg-type]
