"""`llmft train`, top to bottom: load data → build parts → train → evaluate → save.

Each line calls a builder that takes one config section. Read this file to know what a run does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.config.schema import RunConfig

if TYPE_CHECKING:  # for annotations only: the CLI imports this module before torch is wanted
    from llmft.adapters.build import AdapterSummary
    from llmft.config.schema import ModelConfig
    from llmft.data.build import EncodedData, PreparedData
    from llmft.evaluate.generation import GenerationEval
    from llmft.tracking.base import SearchLink
    from llmft.tracking.session import Tracking
    from llmft.train.distributed.group import Distribution
    from llmft.train.loop import LoopState
    from llmft.train.trainer import LocalTrainer

Say = Callable[[str], None]


@dataclass
class RunResult:
    """What a run produced: final metrics and where its files are."""

    metrics: dict[str, float]
    output_dir: Path
    task: str = ""
    train_losses: list[tuple[int, float]] = field(default_factory=list)
    model: object = None
    tokenizer: object = None


def _stderr(text: str) -> None:
    import sys

    sys.stderr.write(text + "\n")


def run(
    config: RunConfig,
    *,
    say: Say = _stderr,
    overwrite: bool = False,
    progress: bool = True,
    resume: bool | str | None = None,
    command: str | None = None,
    on_evaluate: Callable[[int, dict[str, float]], None] | None = None,
    search_link: SearchLink | None = None,
) -> RunResult:
    """Train and evaluate as configured, writing the run directory. Returns metrics and the live model.

    ``resume``: True continues from the newest intact checkpoint in output_dir, a path from that one; a
    run that already trained to its end says so and returns its recorded metrics. ``command``: the
    `llmft train ...` that started the run (config, overrides), repeated in the hints to resume or start
    over (train/commands.py).
    ``on_evaluate(step, metrics)`` is called after each evaluation during training (HPO reports and prunes
    through it, by raising). A config with ``hpo.enabled`` is a search, not one run: ``llmft.run`` and
    ``llmft.search`` run it; here it is refused. ``search_link``: the search this run is a trial of (its
    tracker runs are nested in the search's).
    """
    _refuse_search(config)
    _refuse_untrained(config)
    place = _place(config, say, overwrite=overwrite, resume=resume, command=command)
    if place.finished:
        return _already_finished(place)
    ctx = _start(config, place, command)
    parts = _build_trainer(ctx, progress=progress, on_evaluate=on_evaluate, search_link=search_link)
    trained = _train_to_the_end(ctx, parts)
    return _finish(ctx, parts, trained)


@dataclass
class _Run:
    """What every phase of one run needs: its config, processes, directory, inputs and model."""

    config: RunConfig
    command: str | None
    say: Say
    dist: Distribution
    out: Path
    started: str
    resumed_from: Path | None
    inputs: _Inputs
    model: object
    adapter: AdapterSummary
    base: _Base


@dataclass
class _Base:
    """The model section the run loads from, and what run.json says of it: the user's own, or, for a GGUF
    base, one naming its float32 copy (config.yaml keeps the GGUF; the adapter names the copy)."""

    model: ModelConfig
    record: dict[str, object] = field(default_factory=dict)


@dataclass
class _Parts:
    """The trainer and what watches it: the trackers, and the generation evaluation (if configured)."""

    trainer: LocalTrainer
    trackers: Tracking
    by_generation: GenerationEval | None


@dataclass
class _Trained:
    """How training ended: the loop's state, the final metrics and the final model (whole on rank 0; None
    on the other ranks of a sharded run, FSDP or ZeRO)."""

    state: LoopState
    metrics: dict[str, float]
    model: object
    train_seconds: float  # the training itself, as the log line says it and run.json records it


@dataclass
class _Place:
    """Where the run stands before anything is loaded: its processes, directory and resume point, and
    ``finished``, the note of a resume of a run that already trained to its end (None otherwise)."""

    dist: Distribution
    say: Say
    out: Path
    started: str
    resumed_from: Path | None
    finished: str | None = None


def _place(
    config: RunConfig, say: Say, *, overwrite: bool, resume: bool | str | None, command: str | None
) -> _Place:
    """Join the process group (so that the run directory is made once, by rank 0), then find the resume
    point: its config is checked, and a finished run found, before any data is read."""
    from llmft.train import artifacts
    from llmft.train.distributed import multiprocess

    started = artifacts.now()
    dist = multiprocess.join(config.training, say)  # one process unless a launcher started several
    say = dist.say(say)
    with dist.main_first():  # rank 0 creates (or clears) the run dir before the others look at it
        out = multiprocess.output_dir(
            config.output_dir, dist, overwrite=overwrite, resume=bool(resume), command=command
        )
    if not resume:
        return _Place(dist, say, out, started, None)
    folder = _resume_point(out, resume, config, say, dist.world_size, command)
    from llmft.train.resume import finished_note

    note = finished_note(out, folder, config.training, latest=resume is True, command=command)
    return _Place(dist, say, out, started, folder, note)


def _already_finished(place: _Place) -> RunResult:
    """A resume of a finished run: the note said, the run left as it is, its recorded metrics returned."""
    from llmft.run_dir import RunDir

    place.say(str(place.finished))
    run = RunDir(place.out)
    metrics = {k: float(v) for k, v in run.eval_results().items() if isinstance(v, int | float)}
    place.dist.close()
    return RunResult(metrics, place.out, str(run.record().get("task") or ""))


def _start(config: RunConfig, place: _Place, command: str | None) -> _Run:
    """Everything else before the trainer exists, in the order it must happen: seed, then load the rows
    (checked against the resume point) and the model they imply."""
    from llmft.generate.chat_template import settle_for_run
    from llmft.train.distributed import multiprocess

    say, dist = place.say, place.dist
    _seed(config.seed, multiprocess.threads(config.training, dist, say))
    if config.model.trust_remote_code:
        say("trust_remote_code is on: code shipped with the model will run on this machine")
    base = _base(config, say, dist)
    loading = config.model_copy(update={"model": base.model})
    inputs = _load_inputs(loading, place.resumed_from, say, dist)
    model, adapter = _load_model(loading, inputs, say)
    settle_for_run(model, inputs.tokenizer, inputs.encoded.template, inputs.prepared.format)
    return _Run(
        config, command, say, dist, place.out, place.started, place.resumed_from, inputs, model, adapter, base
    )


def _base(config: RunConfig, say: Say, dist: Distribution) -> _Base:
    """A GGUF base is dequantized once into a float32 copy that the run loads (rank 0 writes it, the others
    then find it); any other base loads as it is."""
    from llmft.models.gguf_copy import prepare_base

    with dist.main_first():
        prepared = prepare_base(config.model, config.hf_token)
    if prepared is None:
        return _Base(config.model)
    section, copy = prepared
    say(copy.describe())
    return _Base(section, {"base_gguf": copy.record()})


def _build_trainer(
    ctx: _Run,
    *,
    progress: bool,
    on_evaluate: Callable[[int, dict[str, float]], None] | None,
    search_link: SearchLink | None,
) -> _Parts:
    """The trainer with its callbacks: trackers get every logged metric and checkpoint, the generation
    evaluation adds its metrics to each evaluation, and ``on_evaluate`` lets a search prune the run."""
    from llmft.evaluate.generation import generation_eval
    from llmft.tracking.session import open_tracking
    from llmft.train.sections import TrainSections
    from llmft.train.trainer import Callbacks, LocalTrainer, RunData

    config, inputs, say = ctx.config, ctx.inputs, ctx.say
    by_generation = generation_eval(
        config.evaluation,
        config.training,
        config.seed,
        inputs.task,
        inputs.tokenizer,
        inputs.prepared.rows,
        ctx.out,
    )
    facts = (inputs.task, inputs.prepared.fingerprint)
    config_data = config.model_dump(mode="json")
    trackers = open_tracking(
        config.tracking,
        ctx.out,
        config_data=config_data,
        facts=facts,
        checkpoint=ctx.resumed_from,
        parent=search_link,
        say=say,
    )
    sections = TrainSections(
        training=config.training,
        data=config.data,
        model=ctx.base.model,
        evaluation=config.evaluation,
        seed=config.seed,
        config_data=config_data,
        hf_token=config.hf_token,
        output_dir=ctx.out,
    )
    trainer = LocalTrainer(
        sections,
        ctx.model,
        RunData(inputs.tokenizer, inputs.encoded, inputs.task, inputs.prepared.fingerprint),
        ctx.out,
        callbacks=Callbacks(
            on_evaluate=on_evaluate,
            say=say,
            on_log=trackers.log,
            checkpoint_files=trackers.checkpoint_files,
            more_metrics=by_generation.during() if by_generation else None,
        ),
        progress=progress,
        command=ctx.command,
        dist=ctx.dist,
    )
    return _Parts(trainer, trackers, by_generation)


def _train_to_the_end(ctx: _Run, parts: _Parts) -> _Trained:
    """Setup, training, final metrics and the gathered model, on every process (FSDP and ZeRO put the
    whole model together collectively, so no rank may skip it). Any failure, Ctrl-C included, marks the
    trackers' runs as failed before it propagates."""
    trainer = parts.trainer
    try:
        for note in trainer.setup():
            ctx.say(note)
        state, seconds = _train(trainer, ctx.resumed_from, ctx.say)
        metrics = trainer.final_metrics()
        final_model = trainer.gather_model()  # every process: FSDP/ZeRO gather the whole model
    except BaseException as err:
        parts.trackers.abort(err)
        raise
    return _Trained(state, metrics, final_model, seconds)


def _finish(ctx: _Run, parts: _Parts, trained: _Trained) -> RunResult:
    """Rank 0 alone scores the generation evaluation, saves the model, writes the run files and closes
    the trackers, so the run directory has one writer; the other ranks just leave the process group."""
    from llmft import run_record
    from llmft.train import artifacts

    out, inputs, metrics, state = ctx.out, ctx.inputs, trained.metrics, trained.state
    if not ctx.dist.is_main:  # rank 0 writes the model and run files
        ctx.dist.close()
        return RunResult(metrics, out, inputs.task, state.train_losses, trained.model)
    if parts.by_generation:
        metrics.update(parts.by_generation.final(trained.model))
    model_dir = artifacts.save_model(trained.model, inputs.tokenizer, out, command=ctx.command)
    run_record.write_run_files(
        out,
        ctx.config,
        inputs.prepared,
        inputs.encoded,
        metrics,
        {
            "started": ctx.started,
            "task": inputs.task,
            "task_reason": inputs.task_reason,
            **run_record.adapter_record(ctx.adapter),
            **run_record.outcome_record(state),
            "train_seconds": round(trained.train_seconds, 1),
            "precision": parts.trainer.precision,
            "model_dir": str(model_dir),
            "resumed_from": str(ctx.resumed_from) if ctx.resumed_from else None,
            "tracking": parts.trackers.describe(),
            **ctx.base.record,
        },
        command=ctx.command,
    )
    parts.trackers.finish(metrics, state.step, out, model_dir)
    ctx.say(
        f"saved to {out}: "
        + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if not k.endswith(("_tokens", "_rows")))
    )
    ctx.dist.close()
    return RunResult(metrics, out, inputs.task, state.train_losses, trained.model, inputs.tokenizer)


def _refuse_search(config: RunConfig) -> None:
    if config.hpo.enabled:
        from llmft.errors import ConfigError

        raise ConfigError(
            "hpo.enabled is on: this config describes a search, not one training run",
            fix="call llmft.run(config) or llmft.search(config) (the CLI: `llmft train` or `llmft hpo`), "
            "or set hpo.enabled: false to train once",
        )


def _refuse_untrained(config: RunConfig) -> None:
    """An objective no loop trains yet is refused before the run directory is made; so are rewards that
    `llmft validate` would refuse (a missing file, a wrong signature), every problem at once."""
    from llmft.train.objectives.choose import refuse_untrained

    refuse_untrained(config.training.objective)
    rl = config.training.rl
    if rl is not None and rl.rewards:
        from llmft.errors import ConfigError
        from llmft.rewards import check_reward_refs

        problems = [p for p in check_reward_refs(rl.rewards, Path.cwd()) if p.severity == "error"]
        if problems:
            raise ConfigError("invalid rewards", problems=problems)


def _resume_point(
    out: Path, resume: bool | str, config: RunConfig, say: Say, world_size: int, command: str | None
) -> Path:
    """The checkpoint to resume from (intact: a damaged one is skipped or refused), checked against the
    config (the rows are checked once loaded)."""
    import yaml

    from llmft.train.checkpoint import config_yaml
    from llmft.train.distributed.multiprocess import resume_world_changes
    from llmft.train.resume import check_resume_config, find_checkpoint

    folder = find_checkpoint(out, resume, say, command)
    current = yaml.safe_load(config_yaml(config.model_dump(mode="json")))
    also_safe = resume_world_changes(folder, config.training, world_size, say)
    for change in check_resume_config(folder, current, also_safe):
        say(f"resume: allowed config change {change}")
    return folder


@dataclass
class _Inputs:
    """What the model is trained on: the rows, the task they imply, and their tokens."""

    prepared: PreparedData
    task: str
    task_reason: str
    tokenizer: object
    encoded: EncodedData


def _load_inputs(
    config: RunConfig, resumed_from: Path | None, say: Say, dist: Distribution | None = None
) -> _Inputs:
    """Rows → task → tokenizer → tokens, each step reported. A resume is checked against the rows here,
    before the (slow) model load: other rows would make the checkpoint's data position meaningless."""
    from llmft.data.build import prepare_rows
    from llmft.models.load import infer_task, load_model_config, load_tokenizer
    from llmft.train.objectives.choose import choose_objective, encode_for_objective, task_for
    from llmft.train.resume import check_resume_data

    token = config.hf_token
    prepared = prepare_rows(config.data, config.seed, token)
    say(
        f"data: {prepared.origin}, format {prepared.format} ("
        + "; ".join(f"{s}: {r.summary()}" for s, r in prepared.reports.items())
        + ")"
    )
    if resumed_from:  # other rows would make the checkpoint's data position meaningless
        notice = check_resume_data(resumed_from, prepared.fingerprint)
        if notice:
            say(notice)
    task, why = infer_task(config.model, load_model_config(config.model, token), prepared.has_labels)
    objective, reason = choose_objective(config.training, prepared.format)
    task, why = task_for(config.model, objective, task, why)
    say(f"task: {task} ({why}); objective: {objective} ({reason})")
    _check_metrics_for(config, task)
    tokenizer = load_tokenizer(
        config.data.tokenization.tokenizer or config.model.name_or_path,
        trust_remote_code=config.model.trust_remote_code,
        revision=config.model.revision,
        token=token,
    )
    with dist.main_first() if dist is not None else nullcontext():  # rank 0 fills the cache
        encoded = encode_for_objective(
            objective, prepared, config.data, config.training.preference, tokenizer, task
        )
    _say_tokens(say, encoded)
    if encoded.mixture is not None:
        mix = encoded.mixture
        shares = ", ".join(f"{n} {q} rows" for n, q in zip(mix.names, mix.quotas(), strict=True))
        say(f"datasets: {len(mix.names)} mixed by {mix.mode}, each epoch {shares}")
    return _Inputs(prepared, task, why, tokenizer, encoded)


def _check_metrics_for(config: RunConfig, task: str) -> None:
    """evaluation.metrics against the task found (`model.task: auto` leaves it to now): a metric the task
    cannot report is an error here, never a silent gap in eval_results.json."""
    from llmft.config.checks import check_metrics_fit_task
    from llmft.errors import ConfigError

    known = config.model_copy(update={"model": config.model.model_copy(update={"task": task})})
    problems = check_metrics_fit_task(known)
    if problems:
        raise ConfigError(f"evaluation.metrics do not fit the task ({task})", problems=problems)


def _load_model(config: RunConfig, inputs: _Inputs, say: Say) -> tuple[object, AdapterSummary]:
    from llmft.adapters.build import attach_adapter
    from llmft.models.load import load_model

    model = load_model(
        config.model,
        inputs.task,
        tokenizer=inputs.tokenizer,
        label_names=inputs.encoded.label_names,
        token=config.hf_token,
    )
    return attach_adapter(
        model,
        config.model.adapter,
        inputs.task,
        log=say,
        tokenizer_name_or_path=config.data.tokenization.tokenizer or config.model.name_or_path,
    )


def _train(trainer: LocalTrainer, resumed_from: Path | None, say: Say) -> tuple[LoopState, float]:
    """The resume (if any), then training with signal handling; the model is left standard. Returns the
    state and the training's seconds: measured once, said here and written to run.json (the end-of-run
    summary reads it there), so the two never disagree."""
    from llmft.run_record import seconds_text

    state = trainer.resume(resumed_from) if resumed_from else None
    start = state.step if state else 0
    t0 = time.perf_counter()
    state = trainer.train(state)
    seconds = round(time.perf_counter() - t0, 1)
    say(
        f"trained {state.step - start} steps in {seconds_text(seconds)}"
        + (f" after resuming at step {start}" if start else "")
        + (f" ({state.stop_reason})" if state.stop_reason else "")
    )
    return state, seconds


def _seed(seed: int, threads: int | None) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)


def _say_tokens(say: Say, encoded: object) -> None:
    for split, stats in encoded.stats.items():  # type: ignore[attr-defined]
        p = stats.percentiles()
        say(
            f"tokens[{split}]: {stats.rows} examples, length p50={p.get('p50')} p90={p.get('p90')} "
            f"max={p.get('max')}, {stats.truncated} truncated, {stats.dropped_too_long} dropped"
        )
