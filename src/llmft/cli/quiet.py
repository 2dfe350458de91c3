"""What third-party output a command shows: none by default, all of it with ``--verbose`` (LLMFT_VERBOSE=1).

A user reads llmft's lines (and its own progress bar); transformers' "Loading weights" and "Writing model
shards" bars, its deprecation FutureWarnings, the tokenizer's "sequence length is longer than the specified
maximum", DeepSpeed's "Setting accelerator to CPU" (on stdout, where `llmft generate` writes its JSONL) and
the libraries' version notes are about how llmft calls them, which the user cannot change. They stay one
flag away for a bug report. This module is the one place that decides it; the CLI entry point applies it
before any command imports those libraries (none is imported at the top of a command module).

Three levers, each a table below:

- environment variables the libraries read when they are first imported (transformers resets its logger's
  level from ``TRANSFORMERS_VERBOSITY`` then, so a level set earlier would not last). Processes a command
  starts (``--nproc`` ranks, search trials, the UI's runs) inherit them and are quiet before they run any
  of llmft's code. A variable the user set is left as it is.
- loggers: level ERROR and a filter that drops what is below it (DeepSpeed sets its logger's level when it
  creates it, which would undo a level alone; a filter stays).
- Python warnings filters for the third-party packages, by the module a warning is attributed to; llmft's
  own warnings keep Python's defaults. A ``-W``/``PYTHONWARNINGS`` the user gave wins.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

VERBOSE_ENV = "LLMFT_VERBOSE"

QUIET_ENV: dict[str, str] = {
    "TRANSFORMERS_VERBOSITY": "error",  # load reports, "sequence length is longer ...", version notes
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",  # transformers' warning_advice lines
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # every huggingface_hub bar, and transformers' (it starts from it)
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets' Map/Filter/Generating bars
    "DATASETS_VERBOSITY": "error",
    "HF_HUB_VERBOSITY": "error",
}
"""Environment variable → value while quiet."""

QUIET_LOGGERS: tuple[str, ...] = (
    "transformers",  # also set by TRANSFORMERS_VERBOSITY; here for a process that imported it already
    "datasets",
    "huggingface_hub",
    "peft",
    "accelerate",
    "DeepSpeed",  # "Setting accelerator to CPU ..." on import, written to stdout
)
"""Loggers that show errors only while quiet."""

THIRD_PARTY_MODULES: tuple[str, ...] = (
    "transformers",  # e.g. "`gradient_checkpointing_enable` is deprecated" on each checkpointed load
    "peft",
    "accelerate",
    "datasets",
    "huggingface_hub",
    "tokenizers",
    "safetensors",
    "deepspeed",
    "torch",  # warnings of torch's internals that the libraries above trigger
)
"""Packages whose Python warnings (any category) are hidden while quiet."""


def verbose_enabled() -> bool:
    """Whether this process (or the command that started it, through the environment) asked for --verbose."""
    return os.environ.get(VERBOSE_ENV) == "1"


def apply(verbose: bool) -> None:
    """Quiet the third-party libraries unless ``verbose``; ``verbose`` is passed on to child processes."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        return
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        _quiet_logger(logging.getLogger(name))
    if not sys.warnoptions:
        for module in THIRD_PARTY_MODULES:
            warnings.filterwarnings("ignore", module=rf"{module}(\.|$)")


class _ErrorsOnly(logging.Filter):
    """Passes records of level ERROR and above."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def _quiet_logger(logger: logging.Logger) -> None:
    logger.setLevel(logging.ERROR)
    if not any(isinstance(f, _ErrorsOnly) for f in logger.filters):
        logger.addFilter(_ErrorsOnly())
