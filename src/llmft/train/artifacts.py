"""The run directory as training writes it: created (or cleared), the run files, the metrics log and the
final model. The names and the layout are run_dir.py's.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmft import run_dir
from llmft.atomic import write_atomic
from llmft.config.redact import redact
from llmft.errors import ConfigError
from llmft.run_dir import RunDir


def prepare_output_dir(
    path: str, *, overwrite: bool = False, resume: bool = False, command: str | None = None
) -> Path:
    """Create the run dir; refuse to overwrite an earlier run silently. ``command``: the `llmft train ...`
    that started this run, repeated in the hints (train/commands.py)."""
    from llmft.train.commands import overwrite_command, resume_command

    out = Path(path)
    existing = RunDir(out).markers()
    if existing and not (overwrite or resume):
        raise ConfigError(
            f"output_dir {out} already holds a run ({', '.join(existing)})",
            fix=f"resume it with `{resume_command(command)}`, start over with "
            f"`{overwrite_command(command)}`, or set another output_dir",
        )
    if existing and overwrite:
        import shutil

        for marker in existing + list(run_dir.REPLACED_ON_OVERWRITE):
            target = out / marker
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # read-only parent, a file in the way, ...: the user's setting, not a bug
        raise ConfigError(
            f"cannot create the output dir {out}: {err.strerror or err}",
            fix="set output_dir to a writable folder (or fix the permissions of its parent)",
        ) from None
    return out


def _write_failed(what: str, err: BaseException, out: Path, command: str | None) -> Exception:
    """A failed write (disk full, permission denied) as the same error a failed checkpoint write gives."""
    from llmft.train.checkpoint import write_failed

    return write_failed(what, err, out, command=command)


def write_json(path: Path, data: object, *, command: str | None = None) -> None:
    """run_dir.write_json, a failed write (disk full) raised as the error that names the last checkpoint."""
    _guarded(run_dir.write_json, path, data, command)


def write_config(path: Path, config_dict: dict[str, object], *, command: str | None = None) -> None:
    """run_dir.write_config, a failed write raised as write_json's is."""
    _guarded(run_dir.write_config, path, config_dict, command)


def _guarded(write: Callable[[Path, Any], None], path: Path, data: object, command: str | None) -> None:
    try:
        write(path, data)
    except OSError as err:
        raise _write_failed(str(path), err, path.parent, command) from err


class MetricsLog:
    """Append-only metrics.jsonl, flushed per line so a killed run keeps its curve.

    A failed append (disk full) stops the run with the last good checkpoint named; a line cut short by it
    is dropped on resume. ``command`` only goes into the resume hint of that error.
    """

    def __init__(self, path: Path, command: str | None = None) -> None:
        self.path = path
        self.command = command
        self.records: list[dict[str, object]] = []

    def __call__(self, record: dict[str, object]) -> None:
        self.records.append(record)
        line = json.dumps(redact(record), default=float) + "\n"
        try:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError as err:
            raise _write_failed(
                f"{self.path} (step {record.get('step')})", err, self.path.parent, self.command
            ) from err

    def truncate_after(self, step: int) -> None:
        """Drop the lines a killed run wrote after the checkpoint at ``step`` (see ``truncate_after``)."""
        truncate_after(self.path, step)


def truncate_after(path: Path, step: int) -> None:
    """Drop the lines of a per-step JSONL log (metrics, RL samples) a killed run wrote after the checkpoint
    at ``step``; the resumed run writes them again. A line a kill cut short (or a blank one) belongs to no
    step and goes too."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if _step_of(line) <= step]
    write_atomic(path, "".join(f"{line}\n" for line in kept))


def _step_of(line: str) -> float:
    """The step a metrics line belongs to; a line a kill cut short (or a blank one) belongs to none."""
    try:
        record = json.loads(line)
    except ValueError:
        return float("inf")
    return record.get("step", 0) if isinstance(record, dict) else float("inf")


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a run depends on, for run.json.

    llmft run from a source checkout (``PYTHONPATH=src``) has no package metadata: its own
    ``__version__`` is recorded then, rather than "not installed".
    """
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("llmft", "torch", "transformers", "peft", "datasets", "accelerate", "tokenizers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    if out["llmft"] == "not installed":
        from llmft.version import __version__

        out["llmft"] = __version__
    return out


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def save_model(model: object, tokenizer: object, out: Path, *, command: str | None = None) -> Path:
    """Adapter (peft) or full model in safetensors, with the tokenizer beside it."""
    from llmft.generate.chat_template import save_generation_files
    from llmft.train.checkpoint import WRITE_ERRORS

    target = RunDir(out).model_dir
    try:
        model.save_pretrained(str(target), safe_serialization=True)  # type: ignore[attr-defined]
        tokenizer.save_pretrained(str(target))  # type: ignore[attr-defined]
        save_generation_files(model, tokenizer, target)  # the template and stop ids training settled
    except WRITE_ERRORS as err:
        raise _write_failed(f"the final model to {target}", err, out, command) from err
    return target
