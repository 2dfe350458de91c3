"""The engine: jobs queued together become one batched generation whose answers equal each job's alone;
batches keep to max_batch rows; sampled jobs with a seed run on their own; a cancelled job stops; a failed
generation fails its jobs and the engine goes on; stop() fails what is still queued."""

from __future__ import annotations

import threading

import pytest

from llmft.generate.batch import Output, Sampling, generate_ids, prompt_ids
from llmft.generate.load import load_run
from llmft.generate.prompts import Prompt
from llmft.serve.engine import Closed, Engine, Job, Limits

pytestmark = pytest.mark.numeric  # compares generated tokens

TEXTS = ["Hi", "What colour is the big sky?", "Reverse the words.\n\nred blue green", "Repeat: moon star"]
WAIT_S = 600  # a guard against a hung engine thread, never a timing claim


@pytest.fixture(scope="module")
def llama(tiny_model):
    return load_run(tiny_model("llama"), device="cpu")


@pytest.fixture(scope="module")
def ids(llama) -> list[list[int]]:
    return [prompt_ids(Prompt(text=t), llama.tokenizer, chat=True) for t in TEXTS]


class Waited:
    """A job's result, collected from the engine's thread."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.outputs: list[Output] | None = None
        self.error: BaseException | None = None

    def ok(self, outputs: list[Output]) -> None:
        self.outputs = outputs
        self.done.set()

    def failed(self, error: BaseException) -> None:
        self.error = error
        self.done.set()

    def job(self, ids: list[int], **kw: object) -> Job:
        return Job(ids=ids, on_done=self.ok, on_error=self.failed, **kw)  # type: ignore[arg-type]


def run_jobs(engine: Engine, jobs: list[tuple[Waited, Job]]) -> None:
    """Queue every job before the engine starts, so they arrive together."""
    for _, job in jobs:
        engine.submit(job)
    engine.start()
    assert all(waited.done.wait(WAIT_S) for waited, _ in jobs)
    engine.stop()


def test_jobs_that_arrive_together_share_one_batch(llama, ids) -> None:
    lengths = [3, 6, 9, 6]
    waits = [Waited() for _ in ids]
    engine = Engine(llama, Limits(max_batch=8))
    run_jobs(engine, [(w, w.job(i, max_new_tokens=n)) for w, i, n in zip(waits, ids, lengths)])
    assert (engine.stats.batches, engine.stats.rows, engine.stats.largest_batch) == (1, 4, 4)
    for w, i, n in zip(waits, ids, lengths):
        assert w.outputs == generate_ids(llama.model, llama.tokenizer, [i], Sampling(max_new_tokens=n))


def test_batches_keep_to_max_batch_rows(llama, ids) -> None:
    waits = [Waited() for _ in ids]
    engine = Engine(llama, Limits(max_batch=3))
    run_jobs(engine, [(w, w.job(i, max_new_tokens=2, n=2)) for w, i in zip(waits, ids)])
    assert (engine.stats.rows, engine.stats.largest_batch, engine.stats.batches) == (8, 2, 4)
    assert all(len(w.outputs or []) == 2 for w in waits)


def test_seeded_jobs_sample_alone_and_repeat(llama, ids) -> None:
    seeded = [Waited() for _ in range(2)]
    engine = Engine(llama, Limits())
    jobs = [w.job(ids[0], max_new_tokens=6, n=2, temperature=1.0, seed=5) for w in seeded]
    run_jobs(engine, list(zip(seeded, jobs)))
    assert engine.stats.batches == 2  # same settings, but a seed each: no shared batch
    assert seeded[0].outputs == seeded[1].outputs


def test_a_cancelled_job_stops_and_others_finish(llama, ids) -> None:
    keep, drop, early = Waited(), Waited(), Waited()
    gone = early.job(ids[2], max_new_tokens=4)
    gone.cancel.set()  # its client left before the batch started
    steps, generating = [0], []

    def cancel_after_two(_: int, __: str) -> None:
        steps[0] += 1
        generating.append(engine.stats.generating)
        if steps[0] == 2:
            dropped.cancel.set()

    dropped = drop.job(ids[1], max_new_tokens=12, on_text=cancel_after_two)
    engine = Engine(llama, Limits())
    run_jobs(engine, [(keep, keep.job(ids[0], max_new_tokens=12)), (drop, dropped), (early, gone)])
    assert drop.outputs is not None and drop.outputs[0].stop_reason == "cancelled"
    assert drop.outputs[0].new_tokens < 12
    assert keep.outputs == generate_ids(llama.model, llama.tokenizer, [ids[0]], Sampling(max_new_tokens=12))
    assert isinstance(early.error, Closed)
    assert engine.stats.cancelled == 1  # the row stopped mid-batch (the early one never started)
    assert set(generating) == {2} and engine.stats.generating == 0  # /health's count of rows in flight


def test_a_failed_generation_fails_its_jobs_and_the_engine_goes_on(llama, ids) -> None:
    bad, good = Waited(), Waited()
    engine = Engine(llama, Limits())
    engine.submit(bad.job([10**9], max_new_tokens=2))  # an id past the vocabulary: the embedding fails
    engine.start()
    assert bad.done.wait(WAIT_S) and isinstance(bad.error, IndexError)
    engine.submit(good.job(ids[0], max_new_tokens=2))
    assert good.done.wait(WAIT_S) and good.outputs is not None
    engine.stop()


def test_stop_fails_what_is_still_queued(llama, ids) -> None:
    waiting = Waited()
    engine = Engine(llama, Limits())
    engine.submit(waiting.job(ids[0], max_new_tokens=2))
    engine.stop()
    assert isinstance(waiting.error, Closed)
    with pytest.raises(Closed, match="shutting down"):
        engine.submit(Waited().job(ids[0], max_new_tokens=2))
