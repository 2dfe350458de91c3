"""Which checkpoint a resume starts from, and what may change between a run and its resume.

All of it runs before the (slow) model load, so a resume that cannot work fails at once. Changes that
alter what is learned (model, data, batch size, learning rate, seed, ...) are refused with the changed
keys named; changes that only affect logging, evaluation, saving or how long to train are allowed and
reported. The data rows must be the same too: a checkpoint's data position counts in them. Loading the
checkpoint itself is the trainer's ``resume``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from llmft.config.schema import TrainingConfig
from llmft.errors import CheckpointError, DataError
from llmft.run_dir import (
    COMPLETE,
    STEP_PREFIX,
    RunDir,
    read_checkpoint_config,
    read_state,
)
from llmft.train import checkpoint as ckpt
from llmft.train import integrity
from llmft.train.checkpoint import saved_data_fingerprint
from llmft.train.commands import overwrite_command, resume_command

Say = Callable[[str], None]


def _quiet(text: str) -> None:
    """The default ``say``: nothing."""


SAFE_PREFIXES = (
    "training.logging_steps",
    "training.eval_steps",
    "training.eval_strategy",
    "training.save_steps",
    "training.save_strategy",
    "training.save_every_minutes",
    "training.save_total_limit",
    "training.save_best_metric",
    "training.max_steps",
    "training.epochs",
    "training.early_stopping_",
    "training.num_threads",
    "training.nan_policy",
    "evaluation.",
    "tracking.",
    "hpo.",
    "output_dir",
    "hf_token",
    "data.tokenization.num_proc",
    "training.eval_batch_size",
    "training.distributed.backend",
    "training.distributed.timeout_minutes",
    "training.distributed.strategy",  # checkpoints hold whole tensors whichever strategy wrote them
    "training.distributed.fsdp.",
    "training.distributed.deepspeed",  # its step-changing values must equal the training section's
)


def flatten(data: object, prefix: str = "") -> dict[str, object]:
    if isinstance(data, dict):
        out: dict[str, object] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def compare(
    old: dict[str, object], new: dict[str, object], also_safe: tuple[str, ...] = ()
) -> tuple[list[str], list[str]]:
    """(safe changes, unsafe changes) as `key: old → new` lines; ``also_safe``: keys safe this time."""
    a, b = flatten(old), flatten(new)
    safe, unsafe = [], []
    for key in sorted(set(a) | set(b)):
        if a.get(key) == b.get(key):
            continue
        line = f"{key}: {a.get(key)!r} → {b.get(key)!r}"
        (safe if key.startswith(SAFE_PREFIXES) or key in also_safe else unsafe).append(line)
    return safe, unsafe


def find_checkpoint(
    out: Path, resume: bool | str | Path, say: Say = _quiet, command: str | None = None
) -> Path:
    """The checkpoint a resume means: the folder given, or the newest intact one of the run in ``out``.

    Each candidate is checked against its manifest (train/integrity.py) before anything reads it. A damaged
    newest checkpoint is skipped for the newest intact one, said in one line; a damaged folder the user
    named is refused (another one is their choice, not ours). ``command``: the `llmft train ...` that
    started the run, repeated in the way to start over.
    """
    root = RunDir(out).checkpoints_dir
    if not isinstance(resume, bool):
        return _given_checkpoint(Path(resume), root)
    found = ckpt.complete_checkpoints(root)
    if not found:
        raise CheckpointError(
            f"no complete checkpoint in {root} to resume from",
            fix="start without --resume (add --overwrite to replace the partial run)",
        )
    damaged: list[tuple[Path, str]] = []  # newest first, with what is wrong
    for folder in reversed(found):
        problems = integrity.damage(folder)
        if not problems:
            if damaged:
                skipped = " and ".join(f"{path} ({why})" for path, why in damaged)
                say(
                    f"resume: skipping damaged checkpoint{'s' if len(damaged) > 1 else ''} {skipped}; "
                    f"resuming from {folder.name}, the newest intact checkpoint"
                )
            return folder
        damaged.append((folder, "; ".join(map(str, problems))))
    raise CheckpointError(
        "no intact checkpoint to resume from, every one is damaged: "
        + ", ".join(f"{path.name} ({why})" for path, why in damaged),
        where=str(root),
        fix=f"start over with `{overwrite_command(command)}` (it replaces the run), or delete {out} and "
        "train again",
    )


def _given_checkpoint(folder: Path, root: Path) -> Path:
    """The checkpoint folder named with --resume PATH, when it is complete and intact."""
    if not (folder / COMPLETE).is_file():
        found = ", ".join(p.name for p in ckpt.complete_checkpoints(root)) or "none"
        raise CheckpointError(
            f"{folder} is not a complete checkpoint (complete ones in {root}: {found})",
            fix="resume from one of those, or with --resume from the latest",
        )
    problems = integrity.damage(folder)
    if problems:
        raise CheckpointError(
            f"the checkpoint is damaged: {'; '.join(map(str, problems))}",
            where=str(folder),
            fix="resume from another checkpoint with `--resume PATH`, or with --resume alone from the newest "
            "intact one",
        )
    return folder


def finished_note(
    out: Path, checkpoint: Path, training: TrainingConfig, *, latest: bool, command: str | None = None
) -> str | None:
    """What a resume of a run that already trained to its end says instead of training no steps (and
    evaluating and saving the same model again); None when there is something to train.

    The run finished (model/ and run.json are written last), completed its steps (not an early stop), and
    neither training.max_steps nor training.epochs grew since: raising one is how to train further. A
    checkpoint the user named (``latest`` False) before the last step is theirs to train from again.
    """
    run = RunDir(out)
    record = run.record()
    if not run.finished() or record.get("stop_reason") != "completed":
        return None
    steps = int(record.get("steps") or 0)  # type: ignore[call-overload]
    if not latest and int(checkpoint.name[len(STEP_PREFIX) :]) < steps:
        return None
    try:
        before = run.config().get("training") or {}
    except yaml.YAMLError:
        return None
    length = ("max_steps", training.max_steps), ("epochs", training.epochs)
    if any(before.get(key) != value for key, value in length):  # type: ignore[union-attr]
        return None
    knob, now = (
        ("training.max_steps", training.max_steps)
        if training.max_steps is not None
        else ("training.epochs", f"{training.num_epochs:g}")
    )
    epochs = int(record.get("epochs_completed") or 0)  # type: ignore[call-overload]
    done = f" ({epochs} epoch{'s' if epochs != 1 else ''} completed)" if epochs else ""
    return (
        f"resume: the run in {out} already finished at step {steps}{done} and saved its model: there is "
        f"nothing left to train. To train further, add a higher {knob} (now {now}) to "
        f"`{resume_command(command)}`; to start over, run `{overwrite_command(command)}`"
    )


def check_resume_config(
    checkpoint: Path, new_config: dict[str, object], also_safe: tuple[str, ...] = ()
) -> list[str]:
    """Refuse a resume whose config changes the run; return the allowed changes to report.

    ``also_safe``: keys whose change is safe for this resume (batch_size, when another number of processes
    keeps the global batch: train/distributed/multiprocess.py).

    The checkpoint's config.yaml is first checked against the hash state.json recorded when it was
    written: an edited copy would make the comparison meaningless.
    """
    text = read_checkpoint_config(checkpoint)
    recorded = read_state(checkpoint).get("config_hash")
    if recorded and recorded != ckpt.config_hash_of(text):
        raise CheckpointError(
            "the checkpoint's config.yaml was changed after the checkpoint was written",
            where=str(RunDir(checkpoint).config_file),
            fix="restore that file, or start a new run (another output_dir, or --overwrite)",
        )
    old = yaml.safe_load(text) or {}
    safe, unsafe = compare(old, new_config, also_safe)
    if unsafe:
        raise CheckpointError(
            "the config changed in ways that alter the run, so it cannot resume exactly:\n  "
            + "\n  ".join(unsafe),
            where=str(checkpoint),
            fix="restore those values, or start a new run (another output_dir, or --overwrite)",
        )
    return safe


def check_resume_data(checkpoint: Path, fingerprint: str) -> str | None:
    """Refuse a resume whose data rows changed since the checkpoint: the saved data position (epoch, batch)
    would then point at other rows, and the run would go on silently as a different one.

    The fingerprint covers the prepared rows of every split, as in run.json. Returns a notice for a
    checkpoint written before fingerprints were saved, whose data cannot be checked.
    """
    saved = saved_data_fingerprint(checkpoint)
    if saved is None:
        return "resume: the checkpoint has no data fingerprint (older llmft); data changes are not checked"
    if saved != fingerprint:
        raise DataError(
            f"the training data changed since the checkpoint was written (data fingerprint {saved[:8]} → "
            f"{fingerprint[:8]}), so its data position no longer points at the same rows",
            where=str(checkpoint),
            fix="restore the data files as they were when the run started, "
            "or start over with --overwrite (or another output_dir)",
        )
    return None
