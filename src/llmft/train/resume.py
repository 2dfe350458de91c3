"""What may change between a run and its resume.

Changes that alter what is learned (model, data, batch size, learning rate, seed, ...) are refused with
the changed keys named; changes that only affect logging, evaluation, saving or how long to train are
allowed and reported. The data rows must be the same too: a checkpoint's data position counts in them.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from llmft.errors import CheckpointError, DataError
from llmft.train.checkpoint import saved_data_fingerprint

SAFE_PREFIXES = (
    "training.logging_steps",
    "training.eval_steps",
    "training.eval_strategy",
    "training.save_steps",
    "training.save_strategy",
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
)


def flatten(data: object, prefix: str = "") -> dict[str, object]:
    if isinstance(data, dict):
        out: dict[str, object] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def compare(old: dict[str, object], new: dict[str, object]) -> tuple[list[str], list[str]]:
    """(safe changes, unsafe changes) as `key: old → new` lines."""
    a, b = flatten(old), flatten(new)
    safe, unsafe = [], []
    for key in sorted(set(a) | set(b)):
        if a.get(key) == b.get(key):
            continue
        line = f"{key}: {a.get(key)!r} → {b.get(key)!r}"
        (safe if key.startswith(SAFE_PREFIXES) else unsafe).append(line)
    return safe, unsafe


def check_resume_config(checkpoint: Path, new_config: dict[str, object]) -> list[str]:
    """Refuse a resume whose config changes the run; return the allowed changes to report."""
    old = yaml.safe_load((checkpoint / "config.yaml").read_text(encoding="utf-8")) or {}
    safe, unsafe = compare(old, new_config)
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
