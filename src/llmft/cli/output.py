"""Small printing helpers shared by the commands (stderr for diagnostics, stdout for results)."""

from __future__ import annotations

import typer

from llmft.errors import Problem


def print_notices(problems: list[Problem]) -> None:
    """Legacy-key notices and warnings: one line each, on stderr."""
    for problem in problems:
        typer.echo(f"{problem.severity}: {problem.render()}", err=True)
