"""Before the first step: the output dir is writable and has room for what the run will save."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from llmft.config.schema import TrainingConfig
from llmft.errors import CheckpointError

BYTES_PER_TRAINABLE = 4 * 3  # fp32 weight + AdamW's two moments
SAFETY = 1.2


def estimated_checkpoint_bytes(trainable: int) -> int:
    return int(trainable * BYTES_PER_TRAINABLE * SAFETY) + 1_000_000


def preflight(out: Path, cfg: TrainingConfig, trainable: int, total: int) -> None:
    """Fail before the first step when the output dir is not writable or too small for what will be saved."""
    try:
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as err:
        raise CheckpointError(
            f"cannot write to the output dir: {err.strerror}",
            where=str(out),
            fix="choose a writable output_dir or fix its permissions",
        ) from None
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
