"""Typed errors that carry what went wrong, where, and how to fix it.

The library raises these and never prints or exits; the CLI renders them (see ``cli/render.py``) and
maps them to exit codes: 2 for the user's input (config, data, model choice), 1 for a runtime failure.
Each class has a stable ``code`` that docs/TROUBLESHOOTING.md documents (a test checks it does).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem found in a config, with its dotted path and an optional fix.

    ``severity`` is "error" (the run cannot start) or "warning"/"notice" (the run can start).
    """

    path: str
    message: str
    fix: str | None = None
    severity: str = "error"
    location: str | None = None  # "file:line" when known

    def render(self) -> str:
        where = f"{self.path}: " if self.path else ""
        loc = f" ({self.location})" if self.location else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{where}{self.message}{loc}{fix}"

    def to_dict(self) -> dict[str, str | None]:
        return {
            "path": self.path,
            "message": self.message,
            "fix": self.fix,
            "severity": self.severity,
            "location": self.location,
        }


class LlmftError(Exception):
    """Base of every error llmft raises on purpose. ``exit_code`` is what the CLI returns."""

    code = "LLMFT000"
    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.where = where

    def render(self) -> str:
        parts = [f"{self.where}: {self.message}" if self.where else self.message]
        if self.fix:
            parts.append(f"Fix: {self.fix}")
        return "\n".join(parts)


class ConfigError(LlmftError, ValueError):
    """The config file or an override is wrong. Holds every problem found, not just the first."""

    code = "LLMFT100"
    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        problems: list[Problem] | None = None,
        source: str | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix, where=source)
        self.problems: list[Problem] = [p for p in (problems or []) if p.severity == "error"]
        self.notices: list[Problem] = [p for p in (problems or []) if p.severity != "error"]
        self.source = source

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        if not self.problems:
            return super().render()
        head = f"{self.source}: " if self.source else ""
        count = len(self.problems)
        lines = [f"{head}{count} problem{'s' if count != 1 else ''}"]
        lines += [f"  - {p.render()}" for p in self.problems]
        return "\n".join(lines)


class DataError(LlmftError, ValueError):
    """The data cannot be read or does not fit the config (missing file, column, bad rows)."""

    code = "LLMFT200"
    exit_code = 2


class ModelError(LlmftError, ValueError):
    """The model or adapter cannot be built as configured (unknown target module, missing weights)."""

    code = "LLMFT300"
    exit_code = 2


class EnvironmentProblem(LlmftError, RuntimeError):
    """The machine cannot run what the config asks for (no CUDA for qlora, missing optional package)."""

    code = "LLMFT400"
    exit_code = 2


class TrainingError(LlmftError, RuntimeError):
    """Training failed at run time (a non-finite loss or gradient norm)."""

    code = "LLMFT500"
    exit_code = 1


class CheckpointError(LlmftError, RuntimeError):
    """A checkpoint or another file of the run cannot be written (disk full, permission denied), or a
    checkpoint cannot be resumed from. A failed write names the last good checkpoint."""

    code = "LLMFT600"
    exit_code = 1


class RunInterrupted(LlmftError):
    """The run was stopped by a signal after writing a checkpoint; exit code 128 + signal number."""

    code = "LLMFT700"

    def __init__(self, message: str, *, exit_code: int, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.exit_code = exit_code


class ExportError(LlmftError, ValueError):
    """A trained model cannot be merged or exported as asked (a prompt-learning adapter, a quantized base,
    an architecture or tokenizer the export format does not support)."""

    code = "LLMFT800"
    exit_code = 2


ALL_ERRORS: tuple[type[LlmftError], ...] = (
    LlmftError,
    ConfigError,
    DataError,
    ModelError,
    EnvironmentProblem,
    TrainingError,
    CheckpointError,
    RunInterrupted,
    ExportError,
)

__all__ = [
    "ALL_ERRORS",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "EnvironmentProblem",
    "ExportError",
    "LlmftError",
    "ModelError",
    "RunInterrupted",
    "Problem",
    "TrainingError",
]
