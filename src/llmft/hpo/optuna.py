"""The Optuna backend: TPE (or random) sampling, median or ASHA pruning, the study kept in a database.

The study lives in ``OUTPUT/hpo.db`` (SQLite) unless ``hpo.storage`` names another database URL; a search
started again resumes it, and several processes or machines given one URL share it. ``max_trials``
counts the trials of the whole study, whoever ran them. A process that dies mid-trial leaves that trial
running in the database: a later process on the same machine sees the process is gone, other machines
see its heartbeat stop; either way the trial is marked failed and its values are tried again.
"""

from __future__ import annotations

import inspect
import json
import multiprocessing
import os
import socket
import time
import warnings
from types import ModuleType
from typing import TYPE_CHECKING

from llmft.config.space import Space
from llmft.errors import ConfigError, RunInterrupted
from llmft.hpo.extras import require
from llmft.hpo.plan import SearchPlan, digest, threads_per_trial
from llmft.hpo.progress import SearchProgress
from llmft.hpo.trial import Pruned, TrialFailed, TrialRecord, run_trial

if TYPE_CHECKING:
    from optuna import Study, Trial
    from optuna.trial import FrozenTrial

HEARTBEAT_S = 10
GRACE_S = 60
PRIMITIVE = (type(None), bool, int, float, str)


def load_optuna() -> ModuleType:
    """Optuna, quiet (llmft reports each trial, failures with their error), or EnvironmentProblem naming
    the extra."""
    optuna = require("optuna", "optuna", "hpo.backend optuna")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def storage_url(plan: SearchPlan) -> str:
    """``hpo.storage`` (a database URL, or a file path taken as SQLite), else ``OUTPUT/hpo.db``."""
    if plan.storage and "://" in plan.storage:
        return plan.storage
    path = plan.storage or str(plan.output_dir / "hpo.db")
    return f"sqlite:///{os.path.abspath(path)}"


def open_study(plan: SearchPlan, worker: int = 0) -> Study:
    """Create or join the study; refuse one whose metric or spaces differ from this search's."""
    optuna = load_optuna()
    url = storage_url(plan)
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    stale = "heartbeat_stale_trial_callback"  # optuna 4.9 renamed it from failed_trial_callback
    if stale not in inspect.signature(optuna.storages.RDBStorage).parameters:
        stale = "failed_trial_callback"
    for attempt in range(3):  # processes starting together race to create the tables
        try:
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=kwargs,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
                **{stale: _retry_later},
            )
            study = optuna.create_study(
                storage=storage,
                study_name=plan.study_name,
                direction=plan.direction,
                load_if_exists=True,
                pruner=_pruner(plan, optuna),
            )
            break
        except Exception:  # noqa: BLE001 - retried, then raised as is
            if attempt == 2:
                raise
            time.sleep(1 + attempt)
    _check_definition(plan, study)
    study.sampler = _sampler(plan, optuna, len(study.get_trials(deepcopy=False)), worker)
    return study


def _check_definition(plan: SearchPlan, study: Study) -> None:
    mine = plan.definition()
    theirs = study.user_attrs.get("llmft_search")
    if theirs is None:
        study.set_user_attr("llmft_search", mine)
    elif theirs != mine:
        changed = [k for k in mine if mine[k] != theirs.get(k)]
        raise ConfigError(
            f"study `{plan.study_name}` in {storage_url(plan)} searches something else "
            f"({', '.join(changed)} differ: {', '.join(str(theirs.get(k)) for k in changed)})",
            fix="start over with --overwrite, or use another output_dir (the study is named after it)",
        )


def _sampler(plan: SearchPlan, optuna: ModuleType, trials_so_far: int, worker: int) -> object:
    """Seeded by hpo.seed; a resumed study, a second worker or a shared database draws a different stream
    (the same seed would repeat the values already tried)."""
    seed = plan.seed
    if trials_so_far or worker or plan.storage:
        seed = int(digest([plan.seed, trials_so_far, worker, os.getpid() if plan.storage else 0]), 16) % 2**31
    if plan.search_algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(plan: SearchPlan, optuna: ModuleType) -> object:
    if plan.pruner == "median":
        startup = max(1, min(5, plan.max_trials // 4))  # a short search cannot wait for 5 trials
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_min_trials=1)
    if plan.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource="auto", reduction_factor=3)
    return optuna.pruners.NopPruner()


def _retry_later(study: Study, trial: FrozenTrial) -> None:
    """Heartbeat lost (the process or its machine died): try the same values again."""
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def _encode(value: object) -> object:
    return value if isinstance(value, PRIMITIVE) else json.dumps(value)


def suggest(trial: Trial, spaces: tuple[Space, ...]) -> dict[str, object]:
    """The trial's values; choices Optuna cannot store (lists) travel as JSON text."""
    params: dict[str, object] = {}
    for s in spaces:
        if s.kind == "choice":
            encoded = [_encode(c) for c in s.choices]
            picked = trial.suggest_categorical(s.path, encoded)  # type: ignore[arg-type]
            params[s.path] = s.choices[encoded.index(picked)]
        elif s.kind == "int":
            step_int = int(s.step or 1)
            params[s.path] = trial.suggest_int(s.path, int(s.low), int(s.high), step=step_int, log=s.log)
        else:
            step = None if s.log else s.step
            params[s.path] = trial.suggest_float(s.path, s.low, s.high, log=s.log, step=step)
    return params


def _decode(params: dict[str, object], spaces: tuple[Space, ...]) -> dict[str, object]:
    out = dict(params)
    for s in spaces:
        if s.kind == "choice" and s.path in out and out[s.path] not in s.choices:
            encoded = [_encode(c) for c in s.choices]
            if out[s.path] in encoded:
                out[s.path] = s.choices[encoded.index(out[s.path])]
    return out


def _counts(trial: FrozenTrial) -> bool:
    """Whether a trial counts towards max_trials: not a surplus one, not one interrupted (retried instead)."""
    if trial.user_attrs.get("surplus"):
        return False
    state = trial.state.name
    ended_badly = state == "FAIL" and "record" in trial.user_attrs  # failed in its own run, not interrupted
    return state in ("RUNNING", "WAITING", "COMPLETE", "PRUNED") or ended_badly


def counted(study: Study) -> int:
    return sum(_counts(t) for t in study.get_trials(deepcopy=False))


def _orphaned(trial: FrozenTrial, host: str) -> bool:
    """A running trial whose process is gone: one of this machine with a dead pid, or one that never said who
    runs it (a live process does so right after creating it) since longer than the heartbeat grace period."""
    pid = trial.user_attrs.get("pid")
    if not isinstance(pid, int):
        start = trial.datetime_start
        return start is not None and time.time() - start.timestamp() > GRACE_S
    return trial.user_attrs.get("host") == host and not _alive(pid)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs (a trial with our own pid is a stale one)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(study: Study) -> int:
    """Trials left running by dead processes (see ``_orphaned``): failed, and their values queued again.

    Other machines' dead trials are failed by Optuna's heartbeat check once their heartbeat is stale.
    """
    from optuna.trial import TrialState

    host = socket.gethostname()
    reaped = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _orphaned(t, host):
            study.tell(t.number, state=TrialState.FAIL)
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            reaped += 1
    return reaped


def _claim(trial: Trial, plan: SearchPlan) -> None:
    """Say who runs the trial (first thing: reap_orphans relies on it), or give it up as surplus when other
    processes sharing the study took the last of max_trials first."""
    for key, value in (
        ("host", socket.gethostname()),
        ("pid", os.getpid()),
        ("trial_dir", str(plan.trial_dir(trial.number))),
    ):
        trial.set_user_attr(key, value)
    earlier = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number and _counts(t)]
    if len(earlier) >= plan.max_trials:
        trial.set_user_attr("surplus", True)
        trial.study.stop()
        raise TrialFailed("max_trials reached by other processes")


def _objective(plan: SearchPlan, events: SearchProgress | None):  # noqa: ANN202 - optuna's objective
    from optuna import TrialPruned

    def objective(trial: Trial) -> float:
        _claim(trial, plan)
        params = suggest(trial, plan.spaces)
        if events:
            events.started(trial.number)

        def report(step: int, metrics: dict[str, float]) -> None:
            if plan.metric in metrics:
                trial.report(float(metrics[plan.metric]), step)
                if trial.should_prune():
                    raise Pruned(step, float(metrics[plan.metric]))

        try:
            record = run_trial(plan, trial.number, params, report=report)
        except RunInterrupted:  # the search stops; these values are tried again when it resumes
            trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            raise
        trial.set_user_attr("record", record.to_dict())
        if events:
            events.finished_trial(record)
        if record.state == "complete" and record.value is not None:
            return record.value
        if record.state == "pruned":
            raise TrialPruned(f"pruned at step {record.steps}")
        raise TrialFailed(record.error)

    return objective


def optimize(plan: SearchPlan, study: Study, events: SearchProgress | None, deadline: float | None) -> None:
    """This process's share of the study: trials until the study has max_trials (or the timeout)."""

    def enough(study: Study, _trial: FrozenTrial) -> None:
        if counted(study) >= plan.max_trials:
            study.stop()

    if counted(study) >= plan.max_trials:
        return
    timeout = None if deadline is None else max(0.0, deadline - time.time())
    study.optimize(
        _objective(plan, events),
        n_trials=plan.max_trials,
        timeout=timeout,
        catch=(TrialFailed,),
        callbacks=[enough],
        gc_after_trial=False,
    )  # run_trial collects


def worker_main(plan: SearchPlan, worker: int, deadline: float | None) -> None:
    """A spawned worker process (hpo.parallel > 1): its own share of the cores, then trials."""
    import torch

    torch.set_num_threads(threads_per_trial(plan.parallel))
    optimize(plan, open_study(plan, worker), None, deadline)


def run_optuna(plan: SearchPlan, events: SearchProgress) -> list[TrialRecord]:
    plan.output_dir.mkdir(parents=True, exist_ok=True)
    study = open_study(plan)
    reaped = reap_orphans(study)
    if reaped:
        events.say(f"{reaped} trial(s) interrupted in an earlier session will be tried again")
    for record in records(study, plan):
        if record.state != "running":
            events.finished_trial(record, earlier=True)
    deadline = time.time() + plan.timeout if plan.timeout else None
    if plan.parallel <= 1:
        optimize(plan, study, events, deadline)
    else:
        _run_workers(plan, study, events, deadline)
    return records(study, plan)


def _run_workers(plan: SearchPlan, study: Study, events: SearchProgress, deadline: float | None) -> None:
    """``hpo.parallel`` worker processes on the one study; this process shows their progress."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=worker_main, args=(plan, k, deadline)) for k in range(plan.parallel)]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        _sync(study, plan, events)
        time.sleep(1.0)
    for w in workers:
        w.join()
        if w.exitcode:
            events.say(f"a search worker process exited with code {w.exitcode}")
    _sync(study, plan, events)


def _sync(study: Study, plan: SearchPlan, events: SearchProgress) -> None:
    for record in records(study, plan):
        if record.state == "running":
            if record.number not in events.running:
                events.started(record.number)
        else:
            events.finished_trial(record)


def records(study: Study, plan: SearchPlan) -> list[TrialRecord]:
    """The study's trials as records (running ones too); interrupted and surplus ones left out."""
    out = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if attrs.get("surplus"):
            continue
        if "record" in attrs:
            out.append(TrialRecord.from_dict(attrs["record"]))
        elif t.state.name == "RUNNING":
            started = t.datetime_start.timestamp() if t.datetime_start else None
            out.append(
                TrialRecord(
                    t.number,
                    _decode(t.params, plan.spaces),
                    started=started,
                    trial_dir=attrs.get("trial_dir"),
                )
            )
    return out
