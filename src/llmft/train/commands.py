"""The commands llmft's messages tell a user to run next, built from the command that started the run.

A hint to resume must repeat the config, the overrides and the launch options the run was started with:
`llmft train c.yaml --resume` without the `output_dir=runs/b` it was started with would resume the
config's own output_dir, another run (or none). The CLI passes its command line down (``train_command``);
the library, called without one, says CONFIG.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from llmft.config.redact import MASK, is_secret_key

UNKNOWN = "llmft train CONFIG"  # when the run was not started from the command line


def train_command(config: str, overrides: Sequence[str] = (), launch: Sequence[str] = ()) -> str:
    """`llmft train CONFIG [launch options] [overrides]`, quoted for a POSIX shell. A secret given as an
    override (`hf_token=...`) is masked: messages reach logs, and a secret must not."""
    return shlex.join(["llmft", "train", config, *launch, *map(_masked, overrides)])


def resume_command(command: str | None) -> str:
    """The run's own command with --resume: it continues this run from its latest intact checkpoint."""
    return f"{command or UNKNOWN} --resume"


def overwrite_command(command: str | None) -> str:
    """The run's own command with --overwrite: it starts the run over, replacing what it wrote."""
    return f"{command or UNKNOWN} --overwrite"


def _masked(override: str) -> str:
    key, sep, _ = override.partition("=")
    return f"{key}={MASK}" if sep and is_secret_key(key.strip().rsplit(".", 1)[-1]) else override
