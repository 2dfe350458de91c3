"""What may change between a run and its resume.

Changes that alter what is learned (model, data, batch size, learning rate, seed, ...) are refused with
the changed keys named; changes that only affect logging, evaluation, saving or how long to train are
allowed and reported.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from llmft.errors import CheckpointError

SAFE_PREFIXES = (
    "training.logging_steps", "training.eval_steps", "training.eval_strategy", "training.save_steps",
    "training.save_strategy", "training.save_total_limit", "training.save_best_metric", "training.max_steps",
    "training.epochs", "training.early_stopping_", "training.num_threads", "training.nan_policy",
    "evaluation.", "tracking.", "hpo.", "output_dir", "hf_token", "data.tokenization.num_proc",
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
