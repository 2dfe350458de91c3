"""`llmft selftest`: check the install end to end in under a minute."""

from __future__ import annotations

import os
import time

import typer


def selftest() -> None:
    """Run the whole pipeline on synthetic data and a tiny model; PASS/FAIL per stage."""
    from llmft.selftest import run_selftest

    started = time.perf_counter()
    report = run_selftest(say=typer.echo, debug=os.environ.get("LLMFT_DEBUG") == "1")
    total = time.perf_counter() - started
    if report.passed:
        typer.echo(f"selftest passed in {total:.1f}s")
        return
    typer.echo(f"selftest FAILED after {total:.1f}s (re-run with --debug for the traceback)", err=True)
    raise typer.Exit(1)
