"""Live progress: a rich bar in a terminal, plain log lines elsewhere (CI logs, files)."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class Progress:
    """Step counter with loss, learning rate, tokens/s and ETA; a context manager."""

    def __init__(self, total: int, description: str = "train", enabled: bool = True) -> None:
        self.total = total
        self.console = Console(stderr=True)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self._bar: RichProgress | None = None
        self._task = None
        self._description = description
        self._last_plain = 0.0

    def __enter__(self) -> Progress:
        if self.live:
            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self._description, total=self.total, stats="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)  # type: ignore[arg-type]

    def update(self, step: int, *, loss: float, lr: float, tokens_per_second: float) -> None:
        stats = f"loss {loss:.4f}  lr {lr:.2e}  {tokens_per_second:,.0f} tok/s"
        if self._bar is not None:
            self._bar.update(self._task, completed=step, stats=stats)  # type: ignore[arg-type]
        elif self.enabled:
            sys.stderr.write(f"step {step}/{self.total}  {stats}\n")
            self._last_plain = time.time()

    def note(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(f"  {text}")
        else:
            sys.stderr.write(f"  {text}\n")
