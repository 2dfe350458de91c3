"""The grid and random backends: the list of trials is known up front, and runs on this machine.

Trial ``n`` is always the ``n``-th combination (grid order, or the ``n``-th draw of a seeded random
generator), so a search that stopped resumes by skipping the trials whose ``trial.json`` says they
ended with the same values. ``hpo.parallel`` > 1 runs trials in that many spawned processes (never
threads: each trial seeds the process-wide random generators).
"""

from __future__ import annotations

import itertools
import multiprocessing
import random
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from llmft.errors import RunInterrupted
from llmft.hpo.plan import GRID_POINTS, SearchPlan, threads_per_trial
from llmft.hpo.progress import SearchProgress
from llmft.hpo.trial import TrialRecord, read_record, run_trial, write_record

FINAL_STATES = ("complete", "pruned", "failed")


def grid_trials(plan: SearchPlan) -> list[dict[str, object]]:
    """Every combination of the spaces' grid values, the first ``max_trials`` of them."""
    values = [space.grid_values(GRID_POINTS) for space in plan.spaces]
    combos = itertools.islice(itertools.product(*values), plan.max_trials)
    return [dict(zip(plan.paths, combo, strict=True)) for combo in combos]


def random_trials(plan: SearchPlan) -> list[dict[str, object]]:
    """``max_trials`` independent draws; the same seed gives the same trials."""
    rng = random.Random(f"llmft-hpo-{plan.seed}")
    return [{space.path: space.sample(rng) for space in plan.spaces} for _ in range(plan.max_trials)]


def earlier_result(plan: SearchPlan, number: int, params: dict[str, object]) -> TrialRecord | None:
    """The record of trial ``number`` from an earlier session, when it ended with these very values."""
    record = read_record(plan.trial_dir(number))
    if record is None or record.state not in FINAL_STATES or record.params != params:
        return None
    return record


def run_local(plan: SearchPlan, events: SearchProgress) -> list[TrialRecord]:
    """Run the grid or random trials (those not already done), in order, ``plan.parallel`` at a time."""
    trials = grid_trials(plan) if plan.backend == "grid" else random_trials(plan)
    records: dict[int, TrialRecord] = {}
    todo: list[tuple[int, dict[str, object]]] = []
    for number, params in enumerate(trials):
        done = earlier_result(plan, number, params)
        if done is not None:
            records[number] = done
            events.finished_trial(done, earlier=True)
        else:
            todo.append((number, params))
    deadline = time.monotonic() + plan.timeout if plan.timeout else None
    if plan.parallel <= 1:
        for i, (number, params) in enumerate(todo):
            if i and _past(deadline):  # the first trial always runs
                events.say(f"hpo.timeout reached: {len(todo) - i} trials not started")
                break
            events.started(number)
            records[number] = run_trial(plan, number, params)
            events.finished_trial(records[number])
    else:
        records.update(_run_pool(plan, todo, events, deadline))
    return [records[n] for n in sorted(records)]


def _pool_trial(plan: SearchPlan, number: int, params: dict[str, object], threads: int) -> TrialRecord:
    """Runs in a worker process: its own share of the cores, then the trial."""
    import torch

    torch.set_num_threads(threads)
    return run_trial(plan, number, params)


def _run_pool(
    plan: SearchPlan,
    todo: list[tuple[int, dict[str, object]]],
    events: SearchProgress,
    deadline: float | None,
) -> dict[int, TrialRecord]:
    """At most ``plan.parallel`` trials at once; a new one starts when one ends (until the timeout).

    A worker that dies (killed for memory, a crash in native code) breaks the pool: the trials it ran are
    recorded as failed, and a fresh pool takes the rest.
    """
    records: dict[int, TrialRecord] = {}
    queue = list(todo)
    while queue:
        _pool_round(plan, queue, records, events, deadline)
        if deadline is not None and time.monotonic() >= deadline and queue:
            events.say(f"hpo.timeout reached: {len(queue)} trials not started")
            break
    return records


def _pool_round(
    plan: SearchPlan,
    queue: list[tuple[int, dict[str, object]]],
    records: dict[int, TrialRecord],
    events: SearchProgress,
    deadline: float | None,
) -> None:
    threads = threads_per_trial(plan.parallel)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=plan.parallel, mp_context=context) as pool:
        running: dict[Future[TrialRecord], tuple[int, dict[str, object]]] = {}
        while queue or running:
            while queue and len(running) < plan.parallel and not (records and _past(deadline)):
                number, params = queue.pop(0)
                events.started(number)
                running[pool.submit(_pool_trial, plan, number, params, threads)] = (number, params)
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                number, params = running.pop(future)
                records[number] = _outcome(plan, future, number, params)
                events.finished_trial(records[number])
            if any(isinstance(f.exception(), BrokenProcessPool) for f in finished):
                for future, (number, params) in running.items():
                    records[number] = _outcome(plan, future, number, params)
                    events.finished_trial(records[number])
                return


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _outcome(
    plan: SearchPlan, future: Future[TrialRecord], number: int, params: dict[str, object]
) -> TrialRecord:
    """The worker's record; a worker that died is a failed trial."""
    try:
        return future.result()
    except RunInterrupted:  # Ctrl-C reached the workers too: the search stops (and resumes later)
        raise
    except Exception as err:  # noqa: BLE001 - the process is gone; the trial failed and the search goes on
        record = read_record(plan.trial_dir(number)) or TrialRecord(
            number, params, trial_dir=str(plan.trial_dir(number))
        )
        record.state, record.finished = "failed", time.time()
        record.error = f"the trial's process died ({type(err).__name__}: {err}); out of memory?"
        write_record(record)
        return record
