"""A real `llmft train` subprocess that tests poll: its output goes to a file so that nothing blocks.

Shared by the tests that stop runs from outside (signals, killed workers) and read what happened. Each
test module passes its own environment, working directory and patience.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

HANG_GUARD_S = 1800
"""How long a test waits on a subprocess before calling it hung: a guard only, never a timing claim. A run
of seconds on a quiet machine takes minutes on a loaded 2-core one (measured: 300 s guards fired with two
suites at once), so the guard is far above any run these tests make."""


class CliProcess:
    """``python -m llmft.cli.main train CONFIG *extra``, started at once; stdout and stderr go to ``log``.

    ``timeout`` is the default wait of ``wait_for`` and ``finish``.
    """

    def __init__(
        self, config: Path, log: Path, *extra: str, env: dict[str, str], cwd: Path, timeout: float
    ) -> None:
        self.log = log
        self.timeout = timeout
        self._handle = log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            self.command(config, extra),
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )

    def command(self, config: Path, extra: tuple[str, ...]) -> list[str]:
        """What runs: `llmft train CONFIG *extra` (a subclass may run another entry point)."""
        return [sys.executable, "-m", "llmft.cli.main", "train", str(config), *extra]

    def wait_for(self, condition: Callable[[], bool], timeout: float | None = None) -> bool:
        """Poll until ``condition`` holds (True) or the process ends first (False)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            if condition():
                return True
            if self.proc.poll() is not None:
                return condition()
            time.sleep(0.005)
        return False

    def said(self, text: str) -> bool:
        """Whether the process has written ``text`` to its output so far (an event it emits)."""
        return text in self.log.read_text(encoding="utf-8", errors="replace")

    def workers(self) -> list[psutil.Process]:
        """The processes the CLI started (a launcher's workers); none once it has ended."""
        import psutil

        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def finish(self, timeout: float | None = None) -> tuple[int, str]:
        """Wait for the exit (killing the process if it outlives ``timeout``): its exit code and output."""
        try:
            rc = self.proc.wait(timeout=self.timeout if timeout is None else timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._handle.close()
        return rc, self.log.read_text(encoding="utf-8", errors="replace")
