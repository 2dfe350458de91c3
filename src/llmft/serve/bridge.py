"""Between the event loop and the engine's thread: a request's job, its events, and giving up on it.

The engine calls back on its own thread; each callback is handed to the request's event loop with
``call_soon_threadsafe`` and lands in an ``asyncio.Queue``. Whoever stops listening (the client
disconnected, the server's grace period ran out) sets the job's ``cancel``: the engine checks it between
decode steps, so an abandoned answer stops costing compute within one step.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from llmft.generate.batch import Output
from llmft.serve.engine import Busy, Closed, Engine, Job
from llmft.serve.errors import ApiError

DISCONNECT_POLL_S = 0.2  # how often a waiting non-streamed request checks that its client is still there


@dataclass
class Event:
    """``text`` (a piece of choice ``index``), ``done`` (the outputs) or ``error``."""

    kind: str
    index: int = 0
    text: str = ""
    outputs: list[Output] | None = None
    error: BaseException | None = None


class Waiter:
    """A submitted job and the queue its events arrive on."""

    def __init__(self, engine: Engine, job_args: dict[str, object], stream: bool) -> None:
        loop = asyncio.get_running_loop()
        self.events: asyncio.Queue[Event] = asyncio.Queue()

        def put(event: Event) -> None:
            loop.call_soon_threadsafe(self.events.put_nowait, event)

        on_text = (lambda i, text: put(Event("text", i, text))) if stream else None
        self.job = Job(
            **job_args,  # type: ignore[arg-type]
            on_done=lambda outputs: put(Event("done", outputs=outputs)),
            on_error=lambda err: put(Event("error", error=err)),
            on_text=on_text,
        )
        try:
            engine.submit(self.job)
        except Busy as err:
            raise ApiError(
                "busy", f"the server is busy: {err}; retry shortly", code="rate_limit_exceeded"
            ) from None
        except Closed as err:
            raise ApiError("unavailable", str(err)) from None

    async def result(self, gone: Callable[[], Awaitable[bool]]) -> list[Output]:
        """The outputs; polls ``gone`` meanwhile and cancels the job when the client has left."""
        try:
            while True:
                try:
                    event = await asyncio.wait_for(self.events.get(), DISCONNECT_POLL_S)
                except TimeoutError:
                    if await gone():
                        self.job.cancel.set()
                        raise ApiError("invalid_request", "the client disconnected") from None
                    continue
                if event.kind == "done":
                    return event.outputs or []
                if event.kind == "error":
                    raise _failure(event.error)
        finally:
            self.job.cancel.set()  # a no-op once done; stops the rows when the task itself was cancelled

    async def stream(self) -> AsyncIterator[Event]:
        """Events until the outputs; leaving early (a disconnect closes this generator) cancels the job."""
        try:
            while True:
                event = await self.events.get()
                if event.kind == "error":
                    raise _failure(event.error)
                yield event
                if event.kind == "done":
                    return
        finally:
            self.job.cancel.set()


def _failure(error: BaseException | None) -> ApiError:
    if isinstance(error, Closed):
        return ApiError("unavailable", str(error))
    return ApiError("internal", f"generation failed: {type(error).__name__}: {error}")
