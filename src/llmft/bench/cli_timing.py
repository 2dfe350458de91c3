"""How long `llmft --help` and `llmft validate CONFIG` take, as a user runs them (new process each time)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPEATS = 5


def _time(cmd: list[str], env: dict[str, str]) -> list[float]:
    samples = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        samples.append(time.perf_counter() - t)
    return samples


def time_cli(out: Path, config: dict[str, object], env: dict[str, str]) -> dict[str, object]:
    """Median of 5 wall-clock runs of each command (interpreter start-up included, as the user sees it)."""
    config_file = out / "validate_me.yaml"
    config_file.write_text(yaml.safe_dump({**config, "output_dir": str(out / "unused")}), encoding="utf-8")
    env = {k: v for k, v in env.items() if k != "LD_PRELOAD"}  # as a user runs it: no allocator swap
    entry = [sys.executable, "-m", "llmft.cli.main"]
    help_s = _time([*entry, "--help"], env)
    validate_s = _time([*entry, "validate", str(config_file)], env)
    return {
        "help_seconds": statistics.median(help_s),
        "validate_seconds": statistics.median(validate_s),
        "help_samples": help_s,
        "validate_samples": validate_s,
        "repeats": REPEATS,
    }
