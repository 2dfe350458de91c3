"""The Ray Tune backend: trials as Ray actors on a local Ray (or the cluster at ``hpo.ray_address``).

Each trial runs the same ``run_trial`` as the other backends, inside a Ray worker that gets
``cpus / parallel`` cores (torch threads set to match). Intermediate evaluations are reported to Tune,
so ASHA (``pruner: asha``, legacy ``scheduler: asha``) or the median rule stop bad trials early; a
stopped trial is recorded as pruned. The Tune experiment is kept in ``OUTPUT/ray``: started again, the
search resumes it (finished trials are not run again; ``max_trials`` is fixed when it was created).
With a remote cluster, trial directories are written on the node that ran the trial.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from types import ModuleType

from llmft.config.space import Space
from llmft.hpo.extras import require
from llmft.hpo.plan import SearchPlan
from llmft.hpo.progress import SearchProgress
from llmft.hpo.trial import TrialFailed, TrialRecord, read_record, run_trial, write_record

EXPERIMENT = "search"
DONE = "hpo_done"  # set in a trial's last report: the trial ran to its end (else a scheduler stopped it)


def trial_number(plan: SearchPlan, tag: str) -> int:
    """The trial's number from the counter that starts Tune's experiment tag (``2_lr=0.001,...``), which
    is also its directory's name (``trial_2``): 0-based for the random generator, 1-based for searchers."""
    counter = int(tag.removeprefix("trial_").split("_", 1)[0])
    return counter - (0 if plan.search_algorithm in (None, "random") else 1)


def _dirname(trial: object) -> str:
    return "trial_" + trial.experiment_tag.split("_", 1)[0]  # type: ignore[attr-defined]


def tune_space(space: Space, tune: ModuleType) -> object:
    if space.kind == "choice":
        return tune.choice(list(space.choices))
    if space.kind == "int":
        low, high = int(space.low), int(space.high)
        if space.log:
            return tune.lograndint(low, high + 1)
        return tune.qrandint(low, high, int(space.step)) if space.step else tune.randint(low, high + 1)
    if space.log:
        return tune.loguniform(space.low, space.high)
    if space.step:
        return tune.quniform(space.low, space.high, space.step)
    return tune.uniform(space.low, space.high)


def trainable(config: dict[str, object], plan: SearchPlan, threads: int) -> None:
    """Runs in a Ray worker: one trial, its evaluations reported to Tune."""
    import torch
    from ray import tune

    torch.set_num_threads(threads)
    number = trial_number(plan, Path(tune.get_context().get_trial_dir()).name)
    params = {path: config[path] for path in plan.paths}

    def report(step: int, metrics: dict[str, float]) -> None:
        if plan.metric in metrics:  # Tune refuses a result without the metric its scheduler watches
            tune.report({**metrics, "step": step, "reported_at": time.time()})

    record = run_trial(plan, number, params, report=report)
    if record.state == "failed":
        raise TrialFailed(record.error)
    tune.report({**record.metrics, "step": record.steps or 0, DONE: 1})


def require_packages(plan: SearchPlan) -> None:
    """Ray Tune, and the search algorithm's own package: checked before anything runs or is written."""
    require("ray.tune", "ray", "hpo.backend ray", package="ray[tune]")
    algo = plan.search_algorithm
    if algo in ("optuna", "tpe"):
        require("optuna", "optuna", f"search_algorithm {algo}")
    elif algo == "hyperopt":
        require("hyperopt", "", "search_algorithm hyperopt")
    elif algo == "bayesopt":
        require("bayes_opt", "", "search_algorithm bayesopt", package="bayesian-optimization")


def _searcher(plan: SearchPlan, search: ModuleType) -> object:
    algo = plan.search_algorithm
    if algo in ("optuna", "tpe"):
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)

        return OptunaSearch(seed=plan.seed)
    if algo == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        return HyperOptSearch(random_state_seed=plan.seed)
    if algo == "bayesopt":
        from ray.tune.search.bayesopt import BayesOptSearch

        return BayesOptSearch(random_state=plan.seed)
    return search.BasicVariantGenerator(random_state=plan.seed, max_concurrent=plan.parallel)


def _scheduler(plan: SearchPlan) -> object:
    from ray.tune import schedulers

    if plan.pruner == "asha":  # + 1: the last report (DONE) is one more iteration
        return schedulers.ASHAScheduler(
            time_attr="training_iteration", max_t=plan.max_reports + 1, grace_period=1, reduction_factor=2
        )
    if plan.pruner == "median":
        return schedulers.MedianStoppingRule(
            time_attr="training_iteration", grace_period=1, min_samples_required=2
        )
    return schedulers.FIFOScheduler()


def _start_ray(ray: ModuleType, plan: SearchPlan) -> bool:
    """A local Ray with this machine's cores, or join hpo.ray_address. True when this call started it."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no experiment banner: our progress says it all
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if plan.ray_address:
        ray.init(address=plan.ray_address, **quiet)
    else:
        ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, **quiet)
    return True


def _resources(ray: ModuleType, plan: SearchPlan) -> dict[str, float]:
    total = ray.cluster_resources()
    cpus = max(1, int(total.get("CPU", 1)) // plan.parallel)
    gpus = float(total.get("GPU", 0))
    return {"cpu": cpus, "gpu": min(1.0, gpus / plan.parallel) if gpus else 0.0}


def run_ray(plan: SearchPlan, events: SearchProgress) -> list[TrialRecord]:
    ray = require("ray", "ray", "hpo.backend ray", package="ray[tune]")
    tune = require("ray.tune", "ray", "hpo.backend ray", package="ray[tune]")
    search = require("ray.tune.search", "ray", "hpo.backend ray", package="ray[tune]")
    searcher = _searcher(plan, search)
    started = _start_ray(ray, plan)
    try:
        resources = _resources(ray, plan)
        fn = tune.with_parameters(trainable, plan=plan, threads=int(resources["cpu"]))
        fn = tune.with_resources(fn, resources)
        from llmft.hpo.ray_progress import ToProgress

        listener = ToProgress(
            str(plan.output_dir),
            events,
            functools.partial(_from_trial, plan),
            lambda trial: trial_number(plan, trial.experiment_tag),
        )
        try:
            grid = _tuner(plan, tune, fn, searcher, listener, events).fit()
        finally:
            listener.close()
        return sorted((_record(plan, r) for r in grid), key=lambda r: r.number)
    finally:
        if started:
            ray.shutdown()


def _tuner(
    plan: SearchPlan, tune: ModuleType, fn: object, searcher: object, listener: object, events: SearchProgress
) -> object:
    path = plan.output_dir / "ray" / EXPERIMENT
    space = {s.path: tune_space(s, tune) for s in plan.spaces}
    if tune.Tuner.can_restore(str(path)):
        events.say(f"resuming the Ray Tune experiment in {path}")
        return tune.Tuner.restore(
            str(path), fn, resume_unfinished=True, resume_errored=False, param_space=space
        )
    return tune.Tuner(
        fn,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=plan.metric,
            mode="max" if plan.direction == "maximize" else "min",
            search_alg=searcher,
            scheduler=_scheduler(plan),
            num_samples=plan.max_trials,
            max_concurrent_trials=plan.parallel,
            time_budget_s=plan.timeout,
            reuse_actors=True,
            trial_dirname_creator=_dirname,
        ),
        run_config=tune.RunConfig(
            name=EXPERIMENT,
            storage_path=str(plan.output_dir / "ray"),
            verbose=0,
            callbacks=[listener],
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )


def _from_trial(plan: SearchPlan, trial: object, failed: bool) -> TrialRecord:
    number = trial_number(plan, trial.experiment_tag)  # type: ignore[attr-defined]
    last = dict(trial.last_result or {})  # type: ignore[attr-defined]
    error = None
    if failed:
        error = _first_line(trial.error_file)  # type: ignore[attr-defined]
    return _assemble(plan, number, dict(trial.config), last, error)  # type: ignore[attr-defined]


def _record(plan: SearchPlan, result: object) -> TrialRecord:
    number = trial_number(plan, Path(result.path).name)  # type: ignore[attr-defined]
    error = None if result.error is None else str(result.error).strip().splitlines()[-1]  # type: ignore[attr-defined]
    return _assemble(plan, number, dict(result.config), dict(result.metrics or {}), error)  # type: ignore[attr-defined]


def _assemble(
    plan: SearchPlan, number: int, config: dict[str, object], last: dict[str, object], error: str | None
) -> TrialRecord:
    """One record from what Tune knows and the trial's own trial.json (when this machine can read it)."""
    mine = read_record(plan.trial_dir(number))
    params = {p: config.get(p) for p in plan.paths}
    if error is not None:
        record = mine or TrialRecord(number, params)
        record.state = "failed"
        record.error = record.error or error
    elif last.get(DONE) and mine is not None and mine.state == "complete":
        return mine
    else:  # stopped by the scheduler: the trial's process was ended, so its trial.json still says running
        record = mine or TrialRecord(number, params)
        record.state = "complete" if last.get(DONE) else "pruned"
        numbers = {k: float(v) for k, v in last.items() if isinstance(v, (int, float))}
        record.value = numbers.get(plan.metric, record.value)
        record.steps = int(numbers["step"]) if "step" in numbers else record.steps
        measured = {k: v for k, v in numbers.items() if k.startswith(("eval_", "test_"))}
        record.metrics = record.metrics or measured
        record.finished = record.finished or numbers.get("reported_at", time.time())
    if mine is not None:
        write_record(record)
    return record


def _first_line(path: object) -> str:
    try:
        lines = Path(str(path)).read_text(encoding="utf-8").strip().splitlines()
    except OSError:
        return "the trial raised an error"
    return lines[-1] if lines else "the trial raised an error"
