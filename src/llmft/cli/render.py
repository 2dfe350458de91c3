"""Turn exceptions into what a user should read, and into exit codes."""

from __future__ import annotations

import os
import sys
import traceback

import click
import typer

from llmft.errors import LlmftError


def debug_enabled(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("LLMFT_DEBUG") == "1"


def print_error(text: str) -> None:
    """Errors go to stderr, plain text, so they read the same in a terminal, a log or CI; one of several
    training processes names its rank (the launcher's summary names the rank that failed first)."""
    several = os.environ.get("WORLD_SIZE", "1") not in ("", "1") and "RANK" in os.environ
    rank = f"[rank {os.environ['RANK']}] " if several else ""
    sys.stderr.write(f"{rank}error: {text}\n")


def run_guarded(app: typer.Typer, argv: list[str]) -> int:
    """Run the typer app; map llmft errors to their exit codes and keep tracebacks for ``--debug``."""
    debug = debug_enabled(argv)
    try:
        result = app(args=argv, prog_name="llmft", standalone_mode=False)
    except LlmftError as err:
        if debug:
            traceback.print_exc()
        print_error(f"{err.render()}\n(error {err.code}: see docs/TROUBLESHOOTING.md)")
        return err.exit_code
    except (click.exceptions.Exit, typer.Exit) as done:
        return done.exit_code
    except (click.ClickException, typer.TyperException) as usage:  # typer 0.2x raises its vendored click's
        if hasattr(usage, "show"):
            usage.show()
        else:
            print_error(str(usage))
        return 2
    except (click.exceptions.Abort, typer.Abort):
        sys.stderr.write("aborted\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as bug:  # noqa: BLE001 - the last line of defence for the user
        if debug:
            traceback.print_exc()
        else:
            print_error(
                f"internal error: {type(bug).__name__}: {bug}\n"
                "This is a bug in llmft, not in your input. Re-run with --debug for the traceback "
                "and include it in a bug report."
            )
        return 1
    return result if isinstance(result, int) else 0
