"""`llmft report RUN [RUN ...] [--out report.html]`: thin; the work is in llmft.report.build."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    runs: list[Path] = typer.Argument(
        ..., help="Run folders (output_dir of `llmft train`) or search folders."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="HTML file to write; default RUN/report.html (one run) or ./report.html."
    ),
) -> None:
    """Write one self-contained HTML report (curves, final metrics, data, config differences, trials), its
    charts inline; PNG copies beside it when matplotlib is installed."""
    from llmft.report.build import write_report

    files = write_report(list(runs), out)
    typer.echo(f"report: {files.html}")
    if files.pngs:
        typer.echo(f"figures: {len(files.pngs)} PNG files in {files.pngs[0].parent}")
    for note in files.notes:
        typer.echo(f"note: {note}", err=True)
