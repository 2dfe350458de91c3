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
    from llmft.adapters.build import attach_adapter
    from llmft.data.build import encode_splits, prepare_rows
    from llmft.models.load import infer_task, load_model, load_model_config, load_tokenizer
    from llmft.train import artifacts
    from llmft.train.lifecycle import (
        check_resume,
        check_resume_rows,
        checkpoint_to_resume,
        preflight,
        resume_state,
        train_with_signals,
    )
    from llmft.train.session import build_session, final_metrics

    started = artifacts.now()
    out = artifacts.prepare_output_dir(config.output_dir, overwrite=overwrite, resume=bool(resume))
    resumed_from = checkpoint_to_resume(out, resume) if resume else None  # before the slow part: fail fast
    if resumed_from:
        check_resume(resumed_from, config, say)
    _seed(config.seed, config.training.num_threads)
    token = config.hf_token
    if config.model.trust_remote_code:
        say("trust_remote_code is on: code shipped with the model will run on this machine")

    prepared = prepare_rows(config.data, config.seed, token)
    say(
        f"data: {prepared.origin}, format {prepared.format} ("
        + "; ".join(f"{s}: {r.summary()}" for s, r in prepared.reports.items())
        + ")"
    )
    if resumed_from:  # before the model loads: other rows would make the saved data position meaningless
        check_resume_rows(resumed_from, prepared.fingerprint, say)
    model_config = load_model_config(config.model, token)
    task, why = infer_task(config.model, model_config, prepared.has_labels)
    say(f"task: {task} ({why})")
    tokenizer = load_tokenizer(
        config.data.tokenization.tokenizer or config.model.name_or_path,
        trust_remote_code=config.model.trust_remote_code,
        revision=config.model.revision,
        token=token,
    )
    encoded = encode_splits(prepared, config.data, tokenizer, task)
    _say_tokens(say, encoded)
    model = load_model(config.model, task, tokenizer=tokenizer, label_names=encoded.label_names, token=token)
    model, adapter = attach_adapter(
        model,
        config.model.adapter,
        task,
        log=say,
        tokenizer_name_or_path=config.data.tokenization.tokenizer or config.model.name_or_path,
    )

    session = build_session(config, model, tokenizer, encoded, task, out, progress=progress)
    session.setup.on_evaluate = on_evaluate
    for note in session.notes:
        say(note)
    session.config_path = config_path
    session.data_fingerprint = prepared.fingerprint
    preflight(session, adapter.trainable_params, adapter.total_params)
    state = resume_state(session, resumed_from, say) if resumed_from else None
    t0 = time.perf_counter()
    state = train_with_signals(session, state, say)
    say(
        f"trained {state.step} steps in {time.perf_counter() - t0:.1f}s"
        + (f" ({state.stop_reason})" if state.stop_reason else "")
    )
    session.finish_training()
    metrics = final_metrics(session, encoded)

    artifacts.write_json(out / "eval_results.json", metrics)
    model_dir = artifacts.save_model(session.model_for_saving(), tokenizer, out)
    artifacts.write_config(out / "config.yaml", config.model_dump(mode="json"))
    artifacts.write_json(out / "data_report.json", _data_report(prepared, encoded))
    if encoded.label_names:
        artifacts.write_json(out / "labels.json", {"id2label": dict(enumerate(encoded.label_names))})
    artifacts.write_json(
        out / "run.json",
        {
            "versions": artifacts.versions(),
            "seed": config.seed,
            "started": started,
            "finished": artifacts.now(),
            "task": task,
            "task_reason": why,
            "data_fingerprint": prepared.fingerprint,
            "data_format": prepared.format,
            **_adapter_record(adapter),
            **_outcome_record(state),
            "model_dir": str(model_dir),
            "resumed_from": str(resumed_from) if resumed_from else None,
        },
    )
    say(
        f"saved to {out}: "
        + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if not k.endswith(("_tokens", "_rows")))
    )
    return RunResult(metrics, out, task, state.train_losses, session.model_for_saving(), tokenizer)


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
