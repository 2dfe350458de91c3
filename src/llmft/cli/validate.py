"""`llmft validate CONFIG [overrides] [--deep] [--format text|json]`: config checks, no torch import.

Exit 0 when valid (warnings and notices allowed), 2 when invalid.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def validate(
    config: Path = typer.Argument(..., help="Config file to check."),
    overrides: list[str] | None = typer.Argument(None, help="Dotted overrides, as for `llmft train`."),
    deep: bool = typer.Option(
        False, "--deep", help="Also resolve the model, adapter targets and data columns."
    ),
    fmt: str = typer.Option("text", "--format", help="text or json (machine-readable problems)."),
) -> None:
    """Check a config without training: every problem at once, with its path, line and a fix."""
    from llmft.config.load import inspect_config
    from llmft.errors import ConfigError, Problem

    if fmt not in ("text", "json"):
        raise ConfigError(f"--format must be text or json, got {fmt!r}")
    try:
        loaded = inspect_config(config, overrides or [], check_files=True)
        problems = list(loaded.problems)
    except ConfigError as err:  # unreadable file: report it in the same shape
        problems = [Problem("", err.message, err.fix, "error", err.where)] + err.problems
        loaded = None
    if loaded is not None and loaded.config is not None:
        problems += _reward_problems(loaded.config, config)
    if deep and loaded is not None and loaded.config is not None:
        from llmft.deep_checks import deep_check

        problems += deep_check(loaded.config)
    errors = [p for p in problems if p.severity == "error"]
    if fmt == "json":
        typer.echo(
            json.dumps(
                {"config": str(config), "valid": not errors, "problems": [p.to_dict() for p in problems]},
                indent=2,
            )
        )
    else:
        _print_text(config, problems, errors)
    if errors:
        raise typer.Exit(2)


def _reward_problems(run: object, config: Path) -> list:
    """Each training.rl reward exists and takes TRL's calling convention (torch-free: rewards/check.py)."""
    rl = getattr(getattr(run, "training", None), "rl", None)
    if rl is None or not rl.rewards:
        return []
    from llmft.rewards import check_reward_refs

    return check_reward_refs(rl.rewards, config.resolve().parent)


def _print_text(config: Path, problems: list, errors: list) -> None:
    for problem in problems:
        if problem.severity != "error":
            typer.echo(f"{problem.severity}: {problem.render()}", err=True)
    if errors:
        count = len(errors)
        typer.echo(f"{config}: {count} problem{'s' if count != 1 else ''}", err=True)
        for problem in errors:
            typer.echo(f"  - {problem.render()}", err=True)
    else:
        typer.echo(f"{config}: valid")
