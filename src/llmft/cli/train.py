"""`llmft train CONFIG [key.path=value ...] [--resume [PATH]]`: thin; the work is in llmft.pipeline."""

from __future__ import annotations

from pathlib import Path

import typer

from llmft.cli.output import print_notices


def train(
    config: Path = typer.Argument(..., help="Run config (YAML or JSON; legacy layouts accepted)."),
    overrides: list[str] | None = typer.Argument(
        None, help="Dotted overrides, e.g. training.learning_rate=1e-4"
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier run in output_dir."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue from the latest complete checkpoint in output_dir; `--resume PATH` (or "
        "`--resume=PATH`) continues from that checkpoint folder instead, like --resume-from.",
    ),
    resume_from: Path | None = typer.Option(
        None,
        "--resume-from",
        help="Continue from this checkpoint folder (`checkpoints/step-N`), also of a finished run.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or notices."),
) -> None:
    """Train and evaluate a model as CONFIG says; writes the run directory (model, metrics, config)."""
    from llmft.config.load import inspect_config
    from llmft.errors import ConfigError

    loaded = inspect_config(config, overrides or [])
    if not quiet:
        print_notices(loaded.notices)
    if loaded.config is None:
        raise ConfigError("invalid config", problems=loaded.errors, source=str(config))
    say = (lambda _: None) if quiet else _say
    if loaded.config.hpo.enabled:
        from llmft.cli.hpo import search_and_report

        search_and_report(loaded.config, quiet=quiet, overwrite=overwrite, shown=loaded.notices)
        return
    from llmft.pipeline import run

    result = run(
        loaded.config,
        overwrite=overwrite,
        progress=not quiet,
        say=say,
        resume=str(resume_from) if resume_from else resume,
        config_path=str(config),
    )
    if not quiet:
        _print_summary(result.output_dir)
    typer.echo(f"run directory: {result.output_dir}")


def _print_summary(out: Path) -> None:
    """Steps, time, throughput, final metrics and where things are, on stderr (stdout stays the path)."""
    from rich.console import Console

    from llmft.report.summary import summary_table

    Console(stderr=True).print(summary_table(out))


def _say(text: str) -> None:
    typer.echo(text, err=True)
