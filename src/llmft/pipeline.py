"""`llmft train`, top to bottom: load data → build parts → train → evaluate → save.

Each line calls a builder that takes one config section. Read this file to know what a run does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.config.schema import RunConfig

if TYPE_CHECKING:  # for annotations only: the CLI imports this module before torch is wanted
    from llmft.adapters.build import AdapterSummary
    from llmft.data.build import EncodedData, PreparedData
    from llmft.train.loop import LoopState
    from llmft.train.session import Session

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
    config_path: str | None = None,
    on_evaluate: Callable[[int, dict[str, float]], None] | None = None,
) -> RunResult:
    """Train and evaluate as configured, writing the run directory. Returns metrics and the live model.

    ``resume``: True continues from the latest complete checkpoint in output_dir, a path from that one.
    ``on_evaluate(step, metrics)`` is called after each evaluation during training (HPO reports and prunes
    through it, by raising).
    """
    from llmft.evaluate.generation import generation_eval
    from llmft.generate.chat_template import settle_for_run
    from llmft.train import artifacts
    from llmft.train.lifecycle import check_resume, checkpoint_to_resume
    from llmft.train.session import build_session, final_metrics

    started = artifacts.now()
    out = artifacts.prepare_output_dir(config.output_dir, overwrite=overwrite, resume=bool(resume))
    resumed_from = checkpoint_to_resume(out, resume) if resume else None  # before the slow part: fail fast
    if resumed_from:
        check_resume(resumed_from, config, say)
    _seed(config.seed, config.training.num_threads)
    if config.model.trust_remote_code:
        say("trust_remote_code is on: code shipped with the model will run on this machine")
    inputs = _load_inputs(config, resumed_from, say)
    model, adapter = _load_model(config, inputs, say)
    settle_for_run(model, inputs.tokenizer, inputs.encoded.template, inputs.prepared.format)
    session = build_session(
        config,
        model,
        inputs.tokenizer,
        inputs.encoded,
        inputs.task,
        out,
        progress=progress,
        config_path=config_path,
    )
    session.setup.on_evaluate = on_evaluate
    by_generation = generation_eval(config, inputs.task, inputs.tokenizer, inputs.prepared.rows, out)
    if by_generation:
        by_generation.attach(session)  # when: every_eval
    session.data_fingerprint = inputs.prepared.fingerprint
    for note in session.notes:
        say(note)
    state = _train(session, adapter, resumed_from, say)
    metrics = final_metrics(session, inputs.encoded)
    if by_generation:
        metrics.update(by_generation.final(session.model_for_saving()))
    model_dir = artifacts.save_model(
        session.model_for_saving(), inputs.tokenizer, out, config_path=config_path
    )
    _write_run_files(
        out,
        config,
        inputs,
        metrics,
        {
            "started": started,
            **_adapter_record(adapter),
            **_outcome_record(state),
            "model_dir": str(model_dir),
            "resumed_from": str(resumed_from) if resumed_from else None,
        },
        config_path=config_path,
    )
    say(
        f"saved to {out}: "
        + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if not k.endswith(("_tokens", "_rows")))
    )
    return RunResult(
        metrics, out, inputs.task, state.train_losses, session.model_for_saving(), inputs.tokenizer
    )


@dataclass
class _Inputs:
    """What the model is trained on: the rows, the task they imply, and their tokens."""

    prepared: PreparedData
    task: str
    task_reason: str
    tokenizer: object
    encoded: EncodedData


def _load_inputs(config: RunConfig, resumed_from: Path | None, say: Say) -> _Inputs:
    """Rows → task → tokenizer → tokens, each step reported. A resume is checked against the rows here,
    before the (slow) model load: other rows would make the checkpoint's data position meaningless."""
    from llmft.data.build import encode_splits, prepare_rows
    from llmft.models.load import infer_task, load_model_config, load_tokenizer
    from llmft.train.lifecycle import check_resume_rows

    token = config.hf_token
    prepared = prepare_rows(config.data, config.seed, token)
    say(
        f"data: {prepared.origin}, format {prepared.format} ("
        + "; ".join(f"{s}: {r.summary()}" for s, r in prepared.reports.items())
        + ")"
    )
    if resumed_from:
        check_resume_rows(resumed_from, prepared.fingerprint, say)
    task, why = infer_task(config.model, load_model_config(config.model, token), prepared.has_labels)
    say(f"task: {task} ({why})")
    tokenizer = load_tokenizer(
        config.data.tokenization.tokenizer or config.model.name_or_path,
        trust_remote_code=config.model.trust_remote_code,
        revision=config.model.revision,
        token=token,
    )
    encoded = encode_splits(prepared, config.data, tokenizer, task)
    _say_tokens(say, encoded)
    return _Inputs(prepared, task, why, tokenizer, encoded)


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


def _train(session: Session, adapter: AdapterSummary, resumed_from: Path | None, say: Say) -> LoopState:
    """Pre-flight checks, the resume (if any), training with signal handling; the model is left standard."""
    from llmft.train.lifecycle import preflight, resume_state, train_with_signals

    preflight(session, adapter.trainable_params, adapter.total_params)
    state = resume_state(session, resumed_from, say) if resumed_from else None
    t0 = time.perf_counter()
    state = train_with_signals(session, state, say)
    say(
        f"trained {state.step} steps in {time.perf_counter() - t0:.1f}s"
        + (f" ({state.stop_reason})" if state.stop_reason else "")
    )
    session.finish_training()
    return state


def _write_run_files(
    out: Path,
    config: RunConfig,
    inputs: _Inputs,
    metrics: dict[str, float],
    record: dict[str, object],
    config_path: str | None = None,
) -> None:
    """eval_results.json, config.yaml, data_report.json, labels.json and run.json (``record`` + facts)."""
    from functools import partial

    from llmft.train import artifacts

    # A failed write (disk full) names the last good checkpoint and how to resume from it.
    write_json = partial(artifacts.write_json, config_path=config_path)
    write_json(out / "eval_results.json", metrics)
    artifacts.write_config(out / "config.yaml", config.model_dump(mode="json"), config_path=config_path)
    write_json(out / "data_report.json", _data_report(inputs.prepared, inputs.encoded))
    if inputs.encoded.label_names:
        write_json(out / "labels.json", {"id2label": dict(enumerate(inputs.encoded.label_names))})
    write_json(
        out / "run.json",
        {
            "versions": artifacts.versions(),
            "seed": config.seed,
            "started": record.pop("started"),
            "finished": artifacts.now(),
            "task": inputs.task,
            "task_reason": inputs.task_reason,
            "data_fingerprint": inputs.prepared.fingerprint,
            "data_format": inputs.prepared.format,
            **record,
        },
    )


def _data_report(prepared: PreparedData, encoded: EncodedData) -> dict[str, object]:
    """data_report.json: where the rows came from, and per split what was kept, dropped and truncated."""
    return {
        "origin": prepared.origin,
        "format": prepared.format,
        "template": encoded.template,
        "splits": {
            s: {**prepared.reports[s].to_dict(), **stats.to_dict()} for s, stats in encoded.stats.items()
        },
    }


def _adapter_record(adapter: AdapterSummary) -> dict[str, object]:
    return {
        "adapter": adapter.describe(),
        "trainable_params": adapter.trainable_params,
        "total_params": adapter.total_params,
    }


def _outcome_record(state: LoopState) -> dict[str, object]:
    """How training ended, for run.json: a resumed or stopped run says so here."""
    return {
        "steps": state.step,
        "epochs_completed": state.epoch,
        "tokens_seen": state.tokens_seen,
        "stop_reason": state.stop_reason or "completed",
        "skipped_nonfinite_steps": state.skipped_nonfinite,
    }


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
