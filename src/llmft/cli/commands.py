"""The list of subcommands. Each module is thin: it parses arguments and calls a library function."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from llmft.cli import synth, train

    app.command("train", help=train.train.__doc__)(train.train)
    app.add_typer(synth.app, name="synth", help="Make synthetic data and tiny models for tests and demos.")
