"""The `llmft` command. Each subcommand lives in its own thin module; none imports torch at import time.

Errors: an ``LlmftError`` is the user's or the run's problem and is shown as a short message with its
exit code (2 input, 1 runtime). Anything else is a bug: a one-line summary, and the traceback only with
``--debug`` (or ``LLMFT_DEBUG=1``).

Third-party libraries' progress bars, log lines and warnings are hidden unless ``--verbose`` (or
``LLMFT_VERBOSE=1``): cli/quiet.py, applied here before any command runs.
"""

from __future__ import annotations

import os
import sys

import typer

from llmft.cli import quiet
from llmft.cli.help_format import Group
from llmft.version import __version__

app = typer.Typer(
    name="llmft",
    cls=Group,
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
    verbose: bool = typer.Option(
        False, "--verbose", help="Also show the libraries' own output (transformers' bars and warnings, ...)."
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print version."),
) -> None:
    if debug:
        os.environ["LLMFT_DEBUG"] = "1"
    quiet.apply(verbose or quiet.verbose_enabled())


_registered = False


def _register() -> None:
    """Attach the subcommands once. Kept in one place so the command list reads like a table of contents."""
    global _registered
    if _registered:
        return
    from llmft.cli import commands

    commands.register(app)
    _registered = True


CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def rewrite_resume(argv: list[str]) -> list[str]:
    """``train ... --resume PATH`` / ``--resume=PATH`` → ``--resume-from PATH`` (typer options cannot take an
    optional value). ``--resume`` alone, or followed by an option, an override (``key=value``) or the config
    file (``.yaml``/``.yml``/``.json``), stays the flag. Only the ``train`` command is touched, and nothing
    after ``--``."""
    command = next((i for i, token in enumerate(argv) if not token.startswith("-")), None)
    if command is None or argv[command] != "train":  # root options (--debug, --verbose, ...) take no value
        return list(argv)
    start = command + 1
    out = list(argv[:start])
    rest = argv[start:]
    i = 0
    while i < len(rest):
        token = rest[i]
        if token == "--":
            out.extend(rest[i:])
            break
        if token.startswith("--resume="):
            out += ["--resume-from", token.split("=", 1)[1]]
        elif token == "--resume" and i + 1 < len(rest) and _is_checkpoint_path(rest[i + 1]):
            out += ["--resume-from", rest[i + 1]]
            i += 1
        else:
            out.append(token)
        i += 1
    return out


def _is_checkpoint_path(token: str) -> bool:
    return (
        bool(token) and not token.startswith("-") and "=" not in token and not token.endswith(CONFIG_SUFFIXES)
    )


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Returns (and exits with) the process exit code."""
    from llmft.cli.render import run_guarded

    _register()
    code = run_guarded(app, rewrite_resume(argv if argv is not None else sys.argv[1:]))
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
