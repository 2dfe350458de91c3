"""`llmft preview CONFIG [overrides] [-n 3]`: dry run — rendered examples with the loss mask, data
statistics, trainable parameters and a peak-memory estimate. Nothing is trained."""

from __future__ import annotations

from pathlib import Path

import typer


def preview(
    config: Path = typer.Argument(..., help="Run config."),
    overrides: list[str] | None = typer.Argument(None, help="Dotted overrides."),
    rows: int = typer.Option(3, "-n", "--rows", help="How many examples to show (0: none)."),
) -> None:
    """Show what training would see (loss mask highlighted) and cost, without training."""
    from rich.console import Console

    from llmft.config.load import load_config
    from llmft.errors import ConfigError

    if rows < 0:  # a negative slice would show all but the last rows, not an error
        raise ConfigError(
            f"expected 0 or more examples, got {rows}", source="-n/--rows", fix="e.g. -n 3 shows three"
        )
    from llmft.preview import build_preview, print_preview

    print_preview(build_preview(load_config(config, overrides or []), rows=rows), Console())
