"""How `--help` shows options: a flag is just its name (`--overwrite`, `--cli-timing/--no-cli-timing`).

typer (0.2x, rich help) labels every option with its Python type, flags included, so `--overwrite <bool>`
reads as if it took a value, `--help` too. A flag's metavar is set empty before the help is drawn, which
is what typer shows in the type column. Options that take a value are labelled with what to type (`PATH`,
`N`, `TEXT`) instead of typer's Python type (`<path>`, `<int range>`, `<list[str]>`).
Every command and group of the app is made with these classes (cli/commands.py, cli/main.py, cli/synth.py).
"""

from __future__ import annotations

import click
from typer.core import TyperCommand, TyperGroup


def _unlabel_flags(command: click.Command, ctx: click.Context) -> None:
    for param in command.get_params(ctx):  # includes the --help option
        if param.metavar is not None:
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.param_type_name == "option" and hasattr(param, "display_type"):
            label = param.display_type(ctx).strip("<>")  # typer's Python-type label: `<list[str]>`
            param.metavar = _VALUE_LABELS.get(label.removeprefix("list[").removesuffix("]"), label.upper())


# typer labels a value by its Python annotation (`<str>`, `<int range>`); these words say what to type.
_VALUE_LABELS = {"str": "TEXT", "int": "N", "int range": "N", "float": "NUMBER", "float range": "NUMBER",
                 "path": "PATH", "file": "FILE", "directory": "DIR"}  # fmt: skip


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
