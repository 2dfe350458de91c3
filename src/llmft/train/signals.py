"""Graceful stop on SIGINT/SIGTERM: finish the optimizer step, checkpoint, exit 130/143.

A second Ctrl-C (or SIGTERM) while stopping exits at once.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

STOPPABLE = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """Context manager: records the first stop signal; the loop polls ``requested`` between steps."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal or 0)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:  # second signal: stop now
            _notify("\nsecond stop signal: exiting without a checkpoint\n")
            # Not SystemExit: raised inside torch.save (the stop's checkpoint) torch turns it into a
            # RuntimeError, and the user would read "could not write the checkpoint" instead. The
            # half-written checkpoint has no COMPLETE marker and is removed by the next run.
            os._exit(128 + signum)
        self.signal = signum
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
