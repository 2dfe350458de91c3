"""Around the loop: pre-flight checks, checkpoints, resume and graceful stops.

The loop itself (loop.py) knows nothing of files or signals; this module connects it to them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from llmft.config.redact import redact
from llmft.config.schema import RunConfig
from llmft.errors import CheckpointError, RunInterrupted
from llmft.train import checkpoint as ckpt
from llmft.train.loop import LoopState
from llmft.train.resume import check_resume_config, check_resume_data
from llmft.train.session import Session, run_training
from llmft.train.signals import GracefulStop

Say = Callable[[str], None]
BYTES_PER_TRAINABLE = 4 * 3  # fp32 weight + AdamW's two moments
SAFETY = 1.2


def estimated_checkpoint_bytes(trainable: int) -> int:
    return int(trainable * BYTES_PER_TRAINABLE * SAFETY) + 1_000_000


def preflight(session: Session, trainable: int, total: int) -> None:
    """Fail before the first step when the output dir is not writable or too small for what will be saved."""
    out = session.out
    try:
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as err:
        raise CheckpointError(
            f"cannot write to the output dir: {err.strerror}",
            where=str(out),
            fix="choose a writable output_dir or fix its permissions",
        ) from None
    cfg = session.setup.cfg
    keep = 0
    if cfg.save_strategy != "no":
        keep = (cfg.save_total_limit or 1) + 1 + (1 if cfg.save_best_metric else 0)
    final_model = total * 4 if trainable == total else trainable * 4
    each = estimated_checkpoint_bytes(trainable)
    need = keep * each + final_model
    free = shutil.disk_usage(out).free
    if need > free:
        raise CheckpointError(
            f"not enough disk space at {out}: checkpoints ({keep} × {each / 1e6:.1f} MB) and the final model "
            f"({final_model / 1e6:.1f} MB) need about {need / 1e6:.1f} MB, {free / 1e6:.1f} MB free",
            fix="free space, lower training.save_total_limit, or set another output_dir",
        )


def _config_yaml(config: RunConfig) -> str:
    """The config as a checkpoint saves it: secrets redacted, so none reaches the disk."""
    return yaml.safe_dump(redact(config.model_dump(mode="json")), sort_keys=False)


def save(session: Session, state: LoopState) -> Path:
    """A checkpoint now, plus the best-checkpoint bookkeeping.

    With save_best_metric, a checkpoint is judged by the evaluation of its own step only (eval_steps a
    divisor of save_steps, or both per epoch): a checkpoint written at a step without an evaluation is
    never marked best, since an earlier evaluation says nothing of its weights.
    """
    cfg = session.setup.cfg
    folder = ckpt.save_checkpoint(
        session.out,
        model=session.model_for_saving(),
        optimizer=session.setup.optimizer,
        scheduler=session.setup.scheduler,
        state=state,
        config_yaml=_config_yaml(session.config),
        keep=cfg.save_total_limit,
        scaler=getattr(session.setup.accelerator, "scaler", None),
        data_fingerprint=session.data_fingerprint,
        config_path=session.config_path,
    )
    metric = cfg.save_best_metric
    evaluated = session.step_eval
    value = evaluated[1].get(metric) if metric and evaluated and evaluated[0] == state.step else None
    if metric and value is not None:
        lower = metric.endswith(("loss", "perplexity"))
        best = session.best_value
        if best is None or (value < best if lower else value > best):
            session.best_value = value
            try:
                ckpt.mark_best(session.out, folder, metric, value)
            except OSError as err:
                raise ckpt.write_failed(
                    f"{session.out / ckpt.CHECKPOINTS / 'best.json'}",
                    err,
                    session.out,
                    config_path=session.config_path,
                ) from err
    return folder


def _restore_best(session: Session, resumed_at: int) -> None:
    """The best value so far, from checkpoints/best.json: a worse evaluation after a resume must not move
    the best. A record of another metric, or of a checkpoint after the resume point (which the resumed run
    writes again), is not restored."""
    metric = session.setup.cfg.save_best_metric
    marker = session.out / ckpt.CHECKPOINTS / "best.json"
    if not metric or not marker.is_file():
        return
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        step = int(str(record["checkpoint"])[len(ckpt.PREFIX) :])
        value = float(record["value"])
    except (ValueError, KeyError, TypeError):
        return
    if record.get("metric") == metric and step <= resumed_at:
        session.best_value = value


def checkpoint_to_resume(out: Path, resume: bool | str | Path) -> Path:
    """The checkpoint a resume means: the folder given, or the latest complete one of the run in ``out``."""
    root = out / ckpt.CHECKPOINTS
    if isinstance(resume, bool):
        folder = ckpt.latest_checkpoint(out)
        if folder is None:
            raise CheckpointError(
                f"no complete checkpoint in {root} to resume from",
                fix="start without --resume (add --overwrite to replace the partial run)",
            )
        return folder
    folder = Path(resume)
    if not (folder / ckpt.MARKER).is_file():
        found = ", ".join(p.name for p in ckpt.complete_checkpoints(root)) or "none"
        raise CheckpointError(
            f"{folder} is not a complete checkpoint (complete ones in {root}: {found})",
            fix="resume from one of those, or with --resume from the latest",
        )
    return folder


def check_resume(folder: Path, config: RunConfig, say: Say) -> None:
    """Refuse a resume whose config changes what the run learns; runs before the data and model load."""
    for change in check_resume_config(folder, yaml.safe_load(_config_yaml(config))):
        say(f"resume: allowed config change {change}")


def check_resume_rows(folder: Path, fingerprint: str, say: Say) -> None:
    """Refuse a resume on changed data rows; runs once the rows are known, before the slow model load."""
    notice = check_resume_data(folder, fingerprint)
    if notice:
        say(notice)


def resume_state(session: Session, resume: bool | str | Path, say: Say) -> LoopState:
    """Load the checkpoint to resume from (already checked by check_resume and check_resume_rows)."""
    folder = checkpoint_to_resume(session.out, resume)
    state = ckpt.load_checkpoint(
        folder,
        model=session.model_for_saving(),
        optimizer=session.setup.optimizer,
        scheduler=session.setup.scheduler,
        scaler=getattr(session.setup.accelerator, "scaler", None),
    )
    _truncate_metrics(session.out / "metrics.jsonl", state.step)
    _restore_best(session, state.step)
    say(f"resumed from {folder} at step {state.step} (epoch {state.epoch})")
    return state


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines the killed run wrote after the checkpoint; the resumed run writes them again."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if _step_of(line) <= step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    os.replace(tmp, path)


def _step_of(line: str) -> float:
    """The step a metrics line belongs to; a line a kill cut short (or a blank one) belongs to none."""
    try:
        record = json.loads(line)
    except ValueError:
        return float("inf")
    return record.get("step", 0) if isinstance(record, dict) else float("inf")


def _stop_checkpoint(session: Session, state: LoopState) -> Path:
    """The checkpoint of the step training stopped at: the one just written for it, or a new one."""
    latest = ckpt.latest_checkpoint(session.out)
    if latest is not None and latest.name == ckpt.checkpoint_name(state.step):
        return latest
    return save(session, state)


def train_with_signals(session: Session, state: LoopState | None, say: Say) -> LoopState:
    """Train; on SIGINT/SIGTERM finish the step, checkpoint, and raise RunInterrupted (exit 130/143)."""
    session.setup.on_checkpoint = lambda s: save(session, s)
    session.setup.last_checkpoint = lambda: ckpt.latest_checkpoint(session.out)
    reported = session.setup.on_evaluate

    def on_evaluate(step: int, metrics: dict[str, float]) -> None:
        session.step_eval = (step, dict(metrics))
        if reported is not None:
            reported(step, metrics)

    session.setup.on_evaluate = on_evaluate
    with GracefulStop() as stop:  # the stop checkpoint is written inside: a 2nd signal still exits at once
        session.setup.should_stop = lambda: stop.requested
        state = run_training(session, state)
        folder = _stop_checkpoint(session, state) if stop.requested else None
    if stop.requested:
        raise RunInterrupted(
            f"stopped by signal at step {state.step}; checkpoint written to {folder}",
            exit_code=stop.exit_code,
            fix=f"continue with `llmft train {session.config_path or 'CONFIG'} --resume`",
        )
    return state
