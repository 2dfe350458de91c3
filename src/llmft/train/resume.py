"""Which checkpoint a resume starts from, and what may change between a run and its resume.

All of it runs before the (slow) model load, so a resume that cannot work fails at once. Changes that
alter what is learned (model, data, batch size, learning rate, seed, ...) are refused with the changed
keys named; changes that only affect logging, evaluation, saving or how long to train are allowed and
reported. The data rows must be the same too: a checkpoint's data position counts in them. Loading the
checkpoint itself is the trainer's ``resume``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from llmft.errors import CheckpointError, DataError
from llmft.run_dir import (
    COMPLETE,
    RunDir,
    read_checkpoint_config,
    read_state,
)
from llmft.train import checkpoint as ckpt
from llmft.train.checkpoint import saved_data_fingerprint

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


def find_checkpoint(out: Path, resume: bool | str | Path) -> Path:
    """The checkpoint a resume means: the folder given, or the latest complete one of the run in ``out``."""
    root = RunDir(out).checkpoints_dir
    if isinstance(resume, bool):
        folder = ckpt.latest_checkpoint(out)
        if folder is None:
            raise CheckpointError(
                f"no complete checkpoint in {root} to resume from",
                fix="start without --resume (add --overwrite to replace the partial run)",
            )
        return folder
    folder = Path(resume)
    if not (folder / COMPLETE).is_file():
        found = ", ".join(p.name for p in ckpt.complete_checkpoints(root)) or "none"
        raise CheckpointError(
            f"{folder} is not a complete checkpoint (complete ones in {root}: {found})",
            fix="resume from one of those, or with --resume from the latest",
        )
    return folder


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
