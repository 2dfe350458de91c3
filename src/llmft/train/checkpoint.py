"""Checkpoints that a kill at any moment cannot corrupt, and that resume a run exactly.

Layout: ``OUTPUT/checkpoints/step-000120/`` holding
- ``trainable.safetensors``  every parameter that trains (LoRA weights, saved heads, or the full model)
- ``optimizer.pt``, ``scheduler.pt``, ``rng.pt``  tensors and plain values only, loaded with weights_only=True
- ``rng-rank1.pt``, ...      the random state of each further process (their dropout masks), when several
- ``state.json``             the loop counters and data position (LoopState), config hash, data fingerprint
- ``config.yaml``            the config the run was started with (for the change check on resume)
- ``manifest.json``          the size and sha256 of each file above, checked on resume (train/integrity.py)
- ``COMPLETE``               written last
A checkpoint is written into a temporary sibling folder, every file fsynced, then renamed into place. A
folder without ``COMPLETE`` or with a temporary name is never taken for a checkpoint; one whose files no
longer match its manifest is damaged, and a resume skips it (train/resume.py).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import pickle
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors import SafetensorError

from llmft import run_dir
from llmft.atomic import write_atomic
from llmft.errors import CheckpointError
from llmft.run_dir import COMPLETE, STEP_PREFIX, TMP_PREFIX, RunDir, complete_checkpoints, latest_checkpoint
from llmft.train import integrity
from llmft.train.batches import BatchSource
from llmft.train.commands import resume_command
from llmft.train.distributed.placement import Placement, Replicated
from llmft.train.loop import LoopState

# The trainable weights by name and the optimizer's state_dict, whole tensors in the one-process layout.
Whole = tuple[dict[str, torch.Tensor], dict[str, Any]]
T = TypeVar("T")


def config_hash_of(config_yaml: str) -> str:
    """Hash of the run's config as saved in the checkpoint (recorded in state.json): a resume checks the
    checkpoint's config.yaml against it before comparing configs, so an edited copy cannot pass."""
    return hashlib.sha256(config_yaml.encode()).hexdigest()[:16]


def config_yaml(config_dict: dict[str, object]) -> str:
    """The config as a checkpoint saves it: secrets redacted, so none reaches the disk."""
    import yaml

    from llmft.config.redact import redact

    return yaml.safe_dump(redact(config_dict), sort_keys=False)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rng_state() -> dict[str, object]:
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, object] = {
        "python": [version, list(internal), gauss],
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].copy()),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def rng_state_bytes() -> bytes:
    """``rng_state()`` as torch.save writes it: what another process sends rank 0 to save (pickling torch
    tensors between processes is not portable; this is what ``torch.load(weights_only=True)`` reads)."""
    import io

    buffer = io.BytesIO()
    torch.save(rng_state(), buffer)
    return buffer.getvalue()


def restore_rng(state: dict[str, object]) -> None:
    version, internal, gauss = state["python"]  # type: ignore[misc]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]  # type: ignore[misc]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])  # type: ignore[arg-type]
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])  # type: ignore[arg-type]


def _torch_save(obj: object, path: Path) -> None:
    # Through a Python file object: a failed write (disk full) then leaves its OSError in the exception
    # chain; given a path, torch only says "unexpected pos 576 vs 534".
    with path.open("wb") as handle:
        torch.save(obj, handle)


def _write_files(folder: Path, parts: dict[str, object]) -> None:
    """Write each part; the slow, failure-prone step (disk full, permissions)."""
    from safetensors.torch import save_file

    save_file(parts["trainable"], str(folder / run_dir.WEIGHTS))  # type: ignore[arg-type]
    _torch_save(parts["optimizer"], folder / run_dir.OPTIMIZER)
    _torch_save(parts["scheduler"], folder / run_dir.SCHEDULER)
    _torch_save(parts["rng"], folder / run_dir.RNG)
    for rank, saved in enumerate(parts.get("rank_rngs") or [], start=1):  # type: ignore[arg-type]
        (folder / run_dir.rank_rng(rank)).write_bytes(saved)
    if parts.get("scaler") is not None:
        _torch_save(parts["scaler"], folder / run_dir.SCALER)
    if parts.get("source"):
        _torch_save(parts["source"], folder / run_dir.BATCH_SOURCE)
    (folder / run_dir.STATE).write_text(json.dumps(parts["state"], indent=2), encoding="utf-8")
    (folder / run_dir.CONFIG).write_text(str(parts["config_yaml"]), encoding="utf-8")
    for name, text in (parts.get("extra_files") or {}).items():  # type: ignore[union-attr]
        (folder / name).write_text(text, encoding="utf-8")


def save_checkpoint(
    out: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, **rest: Any
) -> Path:
    """``write_checkpoint`` of the ``model`` and ``optimizer`` of one process (whole already)."""
    placement = Replicated(model)
    return write_checkpoint(
        out, whole=(placement.full_trainable(), placement.full_optimizer_state(optimizer)), **rest
    )


def write_checkpoint(
    out: Path,
    *,
    whole: Whole,
    scheduler: object,
    state: LoopState,
    config_yaml: str,
    keep: int | None,
    scaler: object | None = None,
    data_fingerprint: str = "",
    command: str | None = None,
    extra_files: dict[str, str] | None = None,
    rank_rngs: list[bytes] | None = None,
    source_state: dict[str, Any] | None = None,
) -> Path:
    """Write a complete checkpoint atomically; on failure the previous ones are untouched.

    ``whole``: the trainable weights and optimizer state as whole tensors, as the run's placement gathers
    them (``Placement.full_trainable``, ``full_optimizer_state``: train/distributed/placement.py).
    ``rank_rngs``: the random states of ranks 1, 2, ... (``rng_state_bytes``), when several processes train.

    ``scaler`` is the fp16 gradient scaler (GPU runs), whose loss scale must survive a resume too.
    ``data_fingerprint`` identifies the rows the data position counts in: a resume refuses other rows.
    ``command`` (the `llmft train ...` that started the run) only goes into the resume hint of the error a
    failed write raises.
    ``extra_files`` (name → text) are written beside the rest: the tracker run ids (tracking.json).
    ``source_state``: the batch source's ``state_dict`` (train/batches.py), when it has one.
    """
    run = RunDir(out)
    root = run.checkpoints_dir
    root.mkdir(parents=True, exist_ok=True)
    final = run.checkpoint(state.step)
    tmp = root / f"{TMP_PREFIX}{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    weights, optimizer_state = whole
    parts = {
        "trainable": weights,
        "optimizer": optimizer_state,
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "rank_rngs": rank_rngs,
        "state": {
            **dataclasses.asdict(state),
            "saved_at": time.time(),
            "config_hash": config_hash_of(config_yaml),
            "data_fingerprint": data_fingerprint,
        },
        "config_yaml": config_yaml,
        "scaler": scaler.state_dict() if scaler is not None else None,  # type: ignore[attr-defined]
        "extra_files": extra_files,
        "source": source_state,
    }
    try:
        _publish(parts, tmp, final)
    except WRITE_ERRORS as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_failed(
            f"the checkpoint for step {state.step}", err, out, where=final, command=command
        ) from err
    prune_checkpoints(root, keep)
    return final


def _publish(parts: dict[str, object], tmp: Path, final: Path) -> None:
    """Write ``parts`` into ``tmp``, mark it complete, make it durable, then rename it to ``final`` in one
    step: a crash at any point leaves either the old checkpoint or the new one, never half of one."""
    tmp.mkdir()
    _write_files(tmp, parts)
    _pause_for_tests(final.name)
    integrity.write_manifest(tmp)  # over every file in the folder, whichever process's state it holds
    (tmp / COMPLETE).write_text(integrity.COMPLETE_TEXT, encoding="utf-8")
    for path in tmp.iterdir():
        _fsync_file(path)
    _fsync_dir(tmp)
    if final.exists():
        _remove_checkpoint(final)
    os.replace(tmp, final)
    _fsync_dir(final.parent)


# What a failed write raises: torch and safetensors wrap the OSError of a full disk in their own types.
WRITE_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, SafetensorError)


def write_failed(
    what: str, err: BaseException, out: Path, *, where: Path | None = None, command: str | None = None
) -> CheckpointError:
    """The error for any write of a run that failed (a checkpoint, metrics.jsonl, the final model, run
    files): what could not be written, why in the OS's words, and the last good checkpoint to resume from
    with the run's own ``command`` (train/commands.py)."""
    last = latest_checkpoint(out)
    resume = (
        f"the last good checkpoint is {last}: continue from it with `{resume_command(command)}`"
        if last
        else "no checkpoint was saved yet (the last good checkpoint is none): the run must start over"
    )
    return CheckpointError(
        f"could not write {what}: {_write_failure(err)}",
        where=str(where) if where else None,
        fix=f"free disk space or fix permissions at {out}; {resume}",
    )


def _write_failure(err: BaseException) -> str:
    """Why a write failed, in the OS's words (`No space left on device (ENOSPC)`) when it is known."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            name = errno.errorcode.get(cause.errno, str(cause.errno))
            return f"{cause.strerror or os.strerror(cause.errno)} ({name})"
        cause = cause.__cause__ or cause.__context__
    return f"{type(err).__name__}: {err}"


def _remove_checkpoint(path: Path) -> None:
    """Marker first: a kill halfway through must not leave a 'complete' checkpoint that lacks files."""
    (path / COMPLETE).unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)


def _pause_for_tests(name: str) -> None:
    """Fault-injection aid for the kill tests: hold the checkpoint half-written for a while (seconds), or,
    with `hold:NAME`, hold checkpoint NAME (e.g. step-0000006) until the process is ended: the test waits
    for the half-written folder, an event, then sends its signal."""
    delay = os.environ.get("LLMFT_TEST_CHECKPOINT_DELAY", "")
    while delay == f"hold:{name}":
        time.sleep(1.0)
    if delay and not delay.startswith("hold:"):
        time.sleep(float(delay))


def saved_data_fingerprint(folder: Path) -> str | None:
    """The data fingerprint a checkpoint was written with; None for checkpoints from before it was saved."""
    return run_dir.read_state(folder).get("data_fingerprint") or None  # type: ignore[return-value]


def prune_checkpoints(root: Path, keep: int | None, protect: Path | None = None) -> None:
    """Keep the newest ``keep`` checkpoints (and ``protect``, the best one); remove leftovers of kills."""
    for stale in root.glob(f"{TMP_PREFIX}*"):
        if not stale.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(stale, ignore_errors=True)
    if keep is None:
        return
    found = complete_checkpoints(root)
    best = _best_marker(root)
    for path in found[:-keep]:
        if path != protect and path.name != best:
            _remove_checkpoint(path)


def _best_marker(root: Path) -> str | None:
    marker = root / run_dir.BEST
    if not marker.exists():
        return None
    return str(json.loads(marker.read_text()).get("checkpoint"))


def mark_best(out: Path, checkpoint: Path, metric: str, value: float) -> None:
    record = {"checkpoint": checkpoint.name, "metric": metric, "value": value}
    write_atomic(RunDir(out).best_file, json.dumps(record))


def read_best(out: Path) -> tuple[str, int, float] | None:
    """(metric, step, value) of checkpoints/best.json; None when there is none or it cannot be read."""
    marker = RunDir(out).best_file
    if not marker.is_file():
        return None
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        step = int(str(record["checkpoint"])[len(STEP_PREFIX) :])
        return str(record.get("metric")), step, float(record["value"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclasses.dataclass
class SavedCheckpoint:
    """A checkpoint's contents as read from disk: whole tensors in the one-process layout."""

    folder: Path
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, object]
    scheduler: dict[str, object]
    rng: dict[str, object]
    scaler: dict[str, object] | None
    state: LoopState
    source: dict[str, Any] = dataclasses.field(default_factory=dict)  # the batch source's state

    def check_fits(self, model: torch.nn.Module) -> None:
        """Every saved weight names a parameter of ``model``."""
        params = {n for n, _ in model.named_parameters()}
        missing = [n for n in self.weights if n not in params]
        if missing:
            raise CheckpointError(
                f"checkpoint weights do not fit the model (e.g. {missing[0]})",
                where=str(self.folder),
                fix="resume with the config the run was started with",
            )


def read_checkpoint(folder: Path, rank: int = 0, world_size: int = 1) -> SavedCheckpoint:
    """Read weights, optimizer, schedule, RNG and loop state; nothing is applied yet.

    Process ``rank`` of ``world_size`` gets its own random state when the checkpoint was written by as many
    processes (its dropout masks continue exactly); otherwise rank 0's. A file that cannot be read (a
    damaged checkpoint without a manifest, written before they were) is a CheckpointError naming it."""
    from safetensors.torch import load_file

    if not (folder / COMPLETE).exists():
        raise CheckpointError(f"{folder} is not a complete checkpoint", fix="resume from another checkpoint")
    scaler, source = folder / run_dir.SCALER, folder / run_dir.BATCH_SOURCE
    saved = _read(folder, run_dir.STATE, lambda _: run_dir.read_state(folder))
    saved.pop("saved_at", None)
    saved.pop("config_hash", None)
    saved.pop("data_fingerprint", None)  # checked before loading (train/resume.py), not loop state
    saved["stop_reason"] = ""  # why the earlier process stopped is not a reason for this one to stop
    saved["train_losses"] = [tuple(x) for x in saved.get("train_losses", [])]
    rng = _rng_file(folder, rank, world_size, int(saved.get("world_size", 1)))
    return SavedCheckpoint(
        folder=folder,
        weights=_read(folder, run_dir.WEIGHTS, lambda path: load_file(str(path))),
        optimizer=_read(folder, run_dir.OPTIMIZER, _torch_load),
        scheduler=_read(folder, run_dir.SCHEDULER, _torch_load),
        rng=_read(folder, rng.name, _torch_load),
        scaler=_read(folder, scaler.name, _torch_load) if scaler.exists() else None,
        state=LoopState(**saved),
        source=_read(folder, source.name, _torch_load) if source.exists() else {},
    )


# What reading a damaged file raises: a missing or cut-short file, a zip or pickle stream that is not one,
# JSON that does not parse.
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    RuntimeError,
    SafetensorError,
    EOFError,
    ValueError,
    pickle.UnpicklingError,
)


def _read(folder: Path, name: str, load: Callable[[Path], T]) -> T:
    """``load(folder / name)``, a failure raised as the damaged checkpoint it shows."""
    try:
        return load(folder / name)
    except READ_ERRORS as err:
        raise CheckpointError(
            f"the checkpoint's {name} cannot be read ({type(err).__name__}: {err}): "
            "the checkpoint is damaged",
            where=str(folder),
            fix="resume from an earlier checkpoint with `--resume PATH`, or start over with --overwrite",
        ) from err


def _torch_load(path: Path) -> Any:
    return torch.load(path, weights_only=True)


def _rng_file(folder: Path, rank: int, world_size: int, saved_world_size: int) -> Path:
    own = folder / run_dir.rank_rng(rank)
    return own if rank and world_size == saved_world_size and own.exists() else folder / run_dir.RNG


def load_checkpoint(folder: Path, *, model: torch.nn.Module, **rest: Any) -> LoopState:
    """``restore_checkpoint`` into the ``model`` of one process (whole)."""
    return restore_checkpoint(folder, Replicated(model), **rest)


def restore_checkpoint(
    folder: Path,
    placement: Placement,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: object,
    scaler: object | None = None,
    rank: int = 0,
    world_size: int = 1,
    source: BatchSource | None = None,
) -> LoopState:
    """Restore weights and optimizer (whole tensors, loaded into the placement's shards when it has
    them), schedule, RNG and the batch source's state; return the loop state to continue from."""
    saved = read_checkpoint(folder, rank, world_size)
    saved.check_fits(placement.model)
    placement.load_trainable(saved.weights)
    placement.load_optimizer_state(optimizer, saved.optimizer)
    scheduler.load_state_dict(saved.scheduler)  # type: ignore[attr-defined]
    restore_rng(saved.rng)
    if scaler is not None and saved.scaler is not None:
        scaler.load_state_dict(saved.scaler)  # type: ignore[attr-defined]
    if source is not None:
        source.load_state_dict(saved.source)
    return saved.state
