"""GracefulStop: a stop signal is recorded for the loop; rank 0 says so, a rank >= 1 stops with it silently
(its line would repeat rank 0's)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from llmft.train.signals import GracefulStop


@pytest.mark.parametrize(("says", "said"), [(True, "SIGTERM received"), (False, "")])
def test_a_stop_is_recorded_and_said_by_the_process_that_says_it(
    says: bool, said: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with GracefulStop(says=says) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        while not stop.requested:  # the handler runs between bytecodes of this thread
            time.sleep(0.001)
    assert stop.exit_code == 143
    err = capfd.readouterr().err
    assert said in err if said else err == ""
