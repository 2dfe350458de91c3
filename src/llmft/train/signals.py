"""Graceful stop on SIGINT/SIGTERM: finish the optimizer step, checkpoint, exit 130/143.

A second Ctrl-C (or SIGTERM) while stopping exits at once.
"""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

STOPPABLE = (signal.SIGINT, signal.SIGTERM)
# Fault-injection aid for the tests that stop a run from outside: with LLMFT_TEST_HOLD_AT_STEP=N, the run
# says so and waits after step N (its metrics record and any checkpoint written) until a signal arrives.
# The test waits for that line, an event, instead of racing a poll against a run that may finish first.
HOLD_AT_STEP = "LLMFT_TEST_HOLD_AT_STEP"
HOLD_LINE = "test hold: after step {step}"


class GracefulStop:
    """Context manager: records the first stop signal; the loop polls ``requested`` between steps.

    ``says``: whether this process says that it stops; a rank >= 1 of several stops with rank 0, which
    says it for the run.
    """

    def __init__(self, says: bool = True) -> None:
        self.signal: int | None = None
        self.says = says
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal or 0)

    def hold_for_tests(self, step: int) -> None:
        """Wait here after step ``LLMFT_TEST_HOLD_AT_STEP`` until a stop signal (or SIGKILL) arrives."""
        if os.environ.get(HOLD_AT_STEP) != str(step):
            return
        _notify(HOLD_LINE.format(step=step) + "\n")
        while self.signal is None:  # the handler sets it; sleep() returns to check after each signal
            time.sleep(0.01)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:  # second signal: stop now
            if self.says:
                _notify("\nsecond stop signal: exiting without a checkpoint\n")
            # Not SystemExit: raised inside torch.save (the stop's checkpoint) torch turns it into a
            # RuntimeError, and the user would read "could not write the checkpoint" instead. The
            # half-written checkpoint has no COMPLETE marker and is removed by the next run.
            os._exit(128 + signum)
        self.signal = signum
        if self.says:
            name = signal.Signals(signum).name
            _notify(
                f"\n{name} received: finishing this step and writing a checkpoint "
                "(send it again to exit at once)\n"
            )

    def __enter__(self) -> GracefulStop:
        for sig in STOPPABLE:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. an HPO worker): no handlers there
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _notify(text: str) -> None:
    """Straight to fd 2: the handler may run while the main code is inside a write to sys.stderr, and a
    buffered stream entered twice raises `RuntimeError: reentrant call`."""
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except OSError:
        pass
