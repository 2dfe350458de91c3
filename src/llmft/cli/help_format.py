"""How `--help` shows options: a flag is just its name (`--overwrite`, `--cli-timing/--no-cli-timing`).

typer (0.2x, rich help) labels every option with its Python type, flags included, so `--overwrite <bool>`
reads as if it took a value, `--help` too. A flag's metavar is set empty before the help is drawn, which
is what typer shows in the type column; options that take a value keep their label (`<path>`, `<int>`).
Every command and group of the app is made with these classes (cli/commands.py, cli/main.py, cli/synth.py).
"""

from __future__ import annotations

import click
from typer.core import TyperCommand, TyperGroup


def _unlabel_flags(command: click.Command, ctx: click.Context) -> None:
    for param in command.get_params(ctx):  # includes the --help option
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


class Command(TyperCommand):
    """A command whose help shows flags without a type label."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _unlabel_flags(self, ctx)
        super().format_help(ctx, formatter)


class Group(TyperGroup):
    """A group (the root command, `llmft synth`) whose help shows flags without a type label."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _unlabel_flags(self, ctx)
        super().format_help(ctx, formatter)
