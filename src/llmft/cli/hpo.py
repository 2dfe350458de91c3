"""`llmft hpo CONFIG [key.path=value ...]`: thin; the work is in llmft.hpo.search.

The search runs whatever ``hpo.enabled`` says in the file (this command is the switch). Started again
on the same output_dir, it resumes; ``--overwrite`` starts over.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from llmft.cli.output import print_notices

if TYPE_CHECKING:
    from llmft.config.schema import RunConfig
    from llmft.errors import Problem


def hpo(
    config: Path = typer.Argument(..., help="Run config with an `hpo` section (or legacy `ray_tune`)"),
    overrides: list[str] | None = typer.Argument(None, help="Dotted overrides, e.g. hpo.max_trials=20"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete an earlier search first."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or notices; the table only."),
) -> None:
    """Search hyperparameters: each trial trains CONFIG with its values; writes results and best config."""
    from llmft.config.load import inspect_config
    from llmft.errors import ConfigError

    loaded = inspect_config(config, ["hpo.enabled=true", *(overrides or [])])
    if not quiet:
        print_notices(loaded.notices)
    if loaded.config is None:
        raise ConfigError("invalid config", problems=loaded.errors, source=str(config))
    search_and_report(loaded.config, quiet=quiet, overwrite=overwrite, shown=loaded.notices)


def search_and_report(
    config: RunConfig, *, quiet: bool = False, overwrite: bool = False, shown: Sequence[Problem] = ()
) -> None:
    """Run the search and print its table and files (also what `llmft train` calls when hpo.enabled).

    ``shown``: the notices already printed when the config was loaded (not repeated).
    """
    from rich.console import Console

    from llmft.hpo.report import results_table
    from llmft.hpo.search import run_search

    result = run_search(
        config, say=(lambda _: None) if quiet else _say, progress=not quiet, overwrite=overwrite, shown=shown
    )
    console = Console()
    if not console.is_terminal:  # a log or a pipe: wide enough that dotted parameter names stay whole
        console = Console(width=160)
    console.print(results_table(result.trials, result.plan))
    for name, path in result.files.items():
        typer.echo(f"{name}: {path}")
    if result.plots:
        typer.echo(f"plots: {result.plots[0].parent}")
    if result.refit_metrics is not None:
        typer.echo(f"model (refit): {result.output_dir / 'model'}")


def _say(text: str) -> None:
    typer.echo(text, err=True)
