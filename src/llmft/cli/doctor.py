"""`llmft doctor [CONFIG] [key.path=value ...] [--json]`: thin; the checks are in llmft.doctor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # pragma: no cover
    from llmft.doctor.report import DoctorReport

STYLES = {"ok": ("OK", "green"), "warn": ("WARN", "yellow"), "fail": ("FAIL", "bold red")}


def doctor(
    config: Path | None = typer.Argument(
        None, help="Optional run config: also check this machine can run it."
    ),
    overrides: list[str] | None = typer.Argument(None, help="Dotted overrides, e.g. training.batch_size=32"),
    json_output: bool = typer.Option(
        False, "--json", help="Print a JSON document (schema: DOCTOR_JSON_SCHEMA)."
    ),
    offline: bool = typer.Option(False, "--no-network", help="Do not contact the Hub (as HF_HUB_OFFLINE=1)."),
) -> None:
    """Check this machine (Python, packages, torch, CPU/GPU, RAM, disk, HF cache, Hub) and, given CONFIG,
    whether it can run it. Exit code 1 when any check fails."""
    from llmft.doctor.report import run_doctor

    report = run_doctor(config, overrides=overrides or [], network=not offline)
    if json_output:
        typer.echo(report.to_json())
    else:
        print_report(report)
    raise typer.Exit(report.exit_code)


def print_report(report: DoctorReport) -> None:
    """Aligned lines grouped by category; a fix under each WARN/FAIL; a summary line last."""
    from rich.console import Console
    from rich.text import Text

    from llmft.doctor.report import CATEGORIES

    console = Console(highlight=False, soft_wrap=True)
    width = max((len(check.name) for check in report.checks), default=10) + 2
    for category in CATEGORIES:
        group = [check for check in report.checks if check.category == category]
        if not group:
            continue
        console.print(Text(category, style="bold"))
        for check in group:
            label, style = STYLES[check.status]
            line = Text("  ")
            line.append(f"{label:<5}", style=style)
            line.append(f" {check.name:<{width}}{check.detail}")
            console.print(line)
            if check.fix and check.status != "ok":
                console.print(Text(f"        {'':<{width}}fix: {check.fix}", style="dim"))
    console.print(Text(report.summary(), style="bold"))
    if report.ok:
        console.print("next: run `llmft selftest`", markup=False)
