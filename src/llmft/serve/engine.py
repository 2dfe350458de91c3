"""The serving engine: one worker thread drains a bounded queue of jobs into batched KV-cache generations.

Requests that arrive together (within ``batch_wait_s`` of the first, up to ``max_batch`` rows) become one
``generate_ids`` call: a batch of 16 costs little more than one prompt on a GPU, so throughput grows with the
load. One thread owns the model, so nothing else needs a lock. Rows of one batch share the sampling settings
``model.generate`` takes per call (temperature, top_p, the RNG); everything else is per row through
``RowControl`` (stop strings, length, streaming, cancellation). So jobs are grouped by sampling settings, all
greedy jobs together, and a job with its own ``seed`` runs in a group of its own (rows sampled beside other
rows would draw other numbers, and a seed promises the same answer each time).

A full queue is refused at once (``Busy``: the app answers 429 with Retry-After) rather than letting waits
grow without bound; after ``stop`` new jobs are refused (``Closed``: 503) and queued ones are failed.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llmft.generate.batch import Output, Sampling, generate_ids
from llmft.generate.load import LoadedRun
from llmft.generate.watch import RowControl


class Busy(Exception):
    """The queue is full: try again shortly."""


class Closed(Exception):
    """The engine is shutting down and takes no new work."""


@dataclass(frozen=True)
class Limits:
    """The scheduler's limits (``llmft serve`` flags)."""

    max_batch: int = 16  # rows generated together (a job with n choices counts n)
    max_queue: int = 64  # jobs waiting; one more is refused
    batch_wait_s: float = 0.005  # how long the first job of a batch waits for others to join it


@dataclass
class Job:
    """One request: ``n`` rows of the same prompt. ``on_text(choice, piece)`` and ``on_done(outputs)`` (or
    ``on_error``) are called on the engine's thread; ``cancel`` is set by whoever stops waiting."""

    ids: list[int]
    max_new_tokens: int
    on_done: Callable[[list[Output]], None]
    on_error: Callable[[BaseException], None]
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    on_text: Callable[[int, str], None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def group(self) -> tuple[object, ...]:
        """Jobs with equal keys may share one ``model.generate`` call."""
        if self.temperature == 0:
            return ("greedy",)
        return ("sample", self.temperature, self.top_p, id(self) if self.seed is not None else None)

    def controls(self) -> list[RowControl]:
        def piece(choice: int) -> Callable[[str], None] | None:
            return None if self.on_text is None else (lambda text: self.on_text(choice, text))  # type: ignore[misc]

        return [
            RowControl(self.stop, self.max_new_tokens, piece(choice), self.cancel.is_set)
            for choice in range(self.n)
        ]


@dataclass
class Stats:
    """What the engine has done, for /health and the benchmark's notes."""

    batches: int = 0
    rows: int = 0
    largest_batch: int = 0
    cancelled: int = 0  # rows stopped early because their client left
    generating: int = 0  # rows of the batch being generated now


class Engine:
    """Owns the model; ``submit`` from any thread, generation on one worker thread."""

    def __init__(self, loaded: LoadedRun, limits: Limits) -> None:
        self.loaded, self.limits = loaded, limits
        self.stats = Stats()
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=limits.max_queue)
        self._held: Job | None = None  # a job that did not fit the last batch: it opens the next one
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmft-serve-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def queued(self) -> int:
        return self._queue.qsize()

    def submit(self, job: Job) -> None:
        """Queue a job, or raise ``Busy`` (queue full) or ``Closed`` (shutting down)."""
        if self._closed.is_set():
            raise Closed("the server is shutting down")
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Busy(f"{self.limits.max_queue} requests are already waiting") from None

    def stop(self, timeout: float | None = None) -> None:
        """Finish the batch in progress, fail what is still queued, and end the worker."""
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for job in self._drain_all():
            job.on_error(Closed("the server shut down before this request was started"))

    def _drain_all(self) -> list[Job]:
        jobs = [self._held] if self._held else []
        self._held = None
        while True:
            try:
                jobs.append(self._queue.get_nowait())
            except queue.Empty:
                return jobs

    def _run(self) -> None:
        while not self._closed.is_set():
            batch = self._next_batch()
            live = [job for job in batch if not job.cancel.is_set()]
            for job in batch:
                if job.cancel.is_set():
                    job.on_error(Closed("cancelled before it started"))
            groups: dict[tuple[object, ...], list[Job]] = {}
            for job in live:
                groups.setdefault(job.group(), []).append(job)
            for jobs in groups.values():
                self._generate(jobs)

    def _next_batch(self) -> list[Job]:
        """The held job or the next queued one, then whatever else arrives within ``batch_wait_s``."""
        first = self._held
        self._held = None
        if first is None:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                return []
        batch, rows = [first], first.n
        deadline = time.monotonic() + self.limits.batch_wait_s
        while rows < self.limits.max_batch:
            try:
                job = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if rows + job.n > self.limits.max_batch:
                self._held = job
                break
            batch.append(job)
            rows += job.n
        return batch

    def _generate(self, jobs: list[Job]) -> None:
        """One batched generation for jobs that share sampling settings; each job gets its own outputs."""
        first = jobs[0]
        prompts = [job.ids for job in jobs for _ in range(job.n)]
        controls = [control for job in jobs for control in job.controls()]
        seed = first.seed if first.seed is not None else random.randrange(2**31)
        sampling = Sampling(
            max_new_tokens=max(job.max_new_tokens for job in jobs),
            temperature=first.temperature,
            top_p=first.top_p,
            seed=seed,
            batch_size=self.limits.max_batch,
        )
        self.stats.generating = len(prompts)
        try:
            outputs = generate_ids(
                self.loaded.model, self.loaded.tokenizer, prompts, sampling, controls=controls
            )
        except Exception as err:  # noqa: BLE001 - every waiting client gets an answer, the server goes on
            for job in jobs:
                job.on_error(err)
            return
        finally:
            self.stats.generating = 0
        self.stats.batches += 1
        self.stats.rows += len(prompts)
        self.stats.largest_batch = max(self.stats.largest_batch, len(prompts))
        self.stats.cancelled += sum(o.stop_reason == "cancelled" for o in outputs)
        start = 0
        for job in jobs:
            job.on_done(outputs[start : start + job.n])
            start += job.n
