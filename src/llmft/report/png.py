"""A chart (figures.Chart) as a PNG file, drawn by matplotlib: for a README, a slide or a paper. Optional:
without matplotlib the report is written all the same (its charts are SVG drawn by report/svg.py), with
no PNG beside it. matplotlib is imported inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from llmft.config.tracker_packages import installed
from llmft.report.svg import PALETTE

if TYPE_CHECKING:  # pragma: no cover
    from llmft.report.figures import Chart

MISSING = "no PNG copies of the charts: matplotlib is not installed (pip install 'llmft[report]')"


def available() -> bool:
    return installed("matplotlib")


def _pyplot() -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def save(chart: Chart, path: Path) -> None:
    """Draw ``chart`` into ``path`` (its folder made here, so no empty folder is left when nothing is
    drawn)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.2))  # type: ignore[attr-defined]
    for i, series in enumerate(chart.series):
        colour = PALETTE[i % len(PALETTE)]
        if chart.kind == "line":
            marker = "o" if len(series.xs) < 12 else None
            ax.plot(series.xs, series.ys, marker=marker, markersize=3, label=series.label, color=colour)
        elif chart.kind == "bars":
            ax.bar(
                series.xs,
                series.ys,
                width=series.widths,
                align="edge",
                alpha=0.6,
                label=series.label,
                color=colour,
                edgecolor="white",
            )
        else:
            ax.scatter(series.xs, series.ys, c=series.colours or colour, zorder=3)
            for x, y, note in zip(series.xs, series.ys, series.notes, strict=False):
                ax.annotate(note, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    _axes(ax, chart)
    fig.tight_layout()  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[attr-defined]


def _axes(ax: object, chart: Chart) -> None:
    if chart.log_x:
        ax.set_xscale("log")  # type: ignore[attr-defined]
    if chart.x_labels:
        ax.set_xticks(range(len(chart.x_labels)), chart.x_labels, rotation=20)  # type: ignore[attr-defined]
    if chart.name == "curve_learning_rate":
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))  # type: ignore[attr-defined]
    ax.set_xlabel(chart.xlabel)  # type: ignore[attr-defined]
    ax.set_ylabel(chart.ylabel)  # type: ignore[attr-defined]
    ax.set_title(chart.title)  # type: ignore[attr-defined]
    if len(chart.series) > 1:
        ax.legend(fontsize=7)  # type: ignore[attr-defined]
