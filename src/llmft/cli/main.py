"""The `llmft` command. Each subcommand lives in its own thin module; none imports torch at import time.

Errors: an ``LlmftError`` is the user's or the run's problem and is shown as a short message with its
exit code (2 input, 1 runtime). Anything else is a bug: a one-line summary, and the traceback only with
``--debug`` (or ``LLMFT_DEBUG=1``).
"""

from __future__ import annotations

import os
import sys

import typer

from llmft import __version__

app = typer.Typer(
    name="llmft",
    help="Config-driven fine-tuning of language models (YAML/JSON config → trained, evaluated model).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmft {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print version."),
) -> None:
    if debug:
        os.environ["LLMFT_DEBUG"] = "1"


_registered = False


def _register() -> None:
    """Attach the subcommands once. Kept in one place so the command list reads like a table of contents."""
    global _registered
    if _registered:
        return
    from llmft.cli import commands

    commands.register(app)
    _registered = True


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Returns (and exits with) the process exit code."""
    from llmft.cli.render import run_guarded

    _register()
    code = run_guarded(app, argv if argv is not None else sys.argv[1:])
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
