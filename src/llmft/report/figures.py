"""The report's charts, drawn once with matplotlib and kept twice: SVG text for the HTML (inline, text as
<text> in the viewer's own sans-serif font: nothing to fetch) and a PNG file for a README or a paper."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from llmft.config.tracker_packages import installed
from llmft.report.runs import Run, Search

TRAIN_CURVES = (
    ("loss", "training loss"),
    ("learning_rate", "learning rate"),
    ("tokens_per_second", "throughput (tokens/s)"),
    ("grad_norm", "gradient norm"),
)
COUNTS = ("_tokens", "_rows", "_samples")  # eval counts, not curves
STATE_COLOURS = {"complete": "tab:blue", "pruned": "tab:orange", "failed": "tab:red", "running": "tab:gray"}


@dataclass
class Figure:
    name: str  # file stem of its PNG
    title: str
    svg: str


def require_matplotlib() -> object:
    from llmft.errors import EnvironmentProblem

    if not installed("matplotlib"):
        raise EnvironmentProblem(
            "llmft report draws its charts with matplotlib, which is not installed",
            fix="pip install 'llmft[report]'",
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _save(plt: object, fig: object, name: str, title: str, png_dir: Path) -> Figure:
    plt.rcParams["svg.hashsalt"] = f"{png_dir}/{name}"  # type: ignore[attr-defined]  # ids unique in the page
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(png_dir / f"{name}.png", dpi=120)  # type: ignore[attr-defined]
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[attr-defined]
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # no XML prolog or DOCTYPE inside HTML
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="chart"', svg, count=1)
    return Figure(name, title, svg)


def _curve(plt: object, runs: list[Run], key: str, title: str, png_dir: Path) -> Figure | None:
    drawn = [(run, run.series(key)) for run in runs]
    drawn = [(run, points) for run, points in drawn if points]
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 3.2))  # type: ignore[attr-defined]
    for run, points in drawn:
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, marker="o" if len(points) < 12 else None, markersize=3, label=run.name)
    ax.set_xlabel("step")
    ax.set_title(title)
    if key == "learning_rate":
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    if len(drawn) > 1:
        ax.legend(fontsize=7)
    return _save(plt, fig, f"curve_{_slug(key)}", title, png_dir)


def curves(runs: list[Run], png_dir: Path) -> list[Figure]:
    """Training curves, then every evaluation metric, each with the runs overlaid."""
    plt = require_matplotlib()
    keys = list(TRAIN_CURVES)
    evals = dict.fromkeys(
        k for run in runs for k in run.keys() if k.startswith("eval_") and not k.endswith(COUNTS)
    )
    keys += [(k, k.removeprefix("eval_").replace("_", " ") + " (validation)") for k in evals]
    found = (_curve(plt, runs, key, title, png_dir) for key, title in keys)
    return [f for f in found if f is not None]


def length_histograms(runs: list[Run], png_dir: Path) -> list[Figure]:
    """Token lengths per split, one chart per run (from data_report.json's length_histogram)."""
    plt = require_matplotlib()
    out = []
    for index, run in enumerate(runs):
        splits = {
            split: stats.get("length_histogram")
            for split, stats in (run.data_report.get("splits") or {}).items()  # type: ignore[union-attr]
            if isinstance(stats, dict) and (stats.get("length_histogram") or {}).get("counts")
        }
        if not splits:
            continue
        fig, ax = plt.subplots(figsize=(5.2, 3.2))  # type: ignore[attr-defined]
        for split, hist in splits.items():
            edges, counts = hist["edges"], hist["counts"]  # type: ignore[index]
            widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
            ax.bar(edges[:-1], counts, width=widths, align="edge", alpha=0.6, label=split, edgecolor="white")
        ax.set_xlabel("tokens per example")
        ax.set_ylabel("examples")
        ax.set_title(f"token lengths: {run.name}")
        ax.legend(fontsize=7)
        out.append(
            _save(plt, fig, f"lengths_{index}_{_slug(run.name)}", f"token lengths ({run.name})", png_dir)
        )
    return out


def search_figures(search: Search, png_dir: Path) -> list[Figure]:
    """The metric against each searched parameter (log axis for wide positive ranges), coloured by state."""
    plt = require_matplotlib()
    trials = [t for t in search.results.get("trials", []) if t.get("value") is not None]  # type: ignore[union-attr]
    out = []
    for param in search.results.get("spaces", {}) or {}:  # type: ignore[union-attr]
        chosen = [t for t in trials if param in (t.get("params") or {})]
        if not chosen:
            continue
        values = [t["params"][param] for t in chosen]
        fig, ax = plt.subplots(figsize=(5.2, 3.2))  # type: ignore[attr-defined]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            xs: list[float] = [float(v) for v in values]
            if min(xs) > 0 and max(xs) / min(xs) >= 100:
                ax.set_xscale("log")
        else:
            labels = list(dict.fromkeys(str(v) for v in values))
            xs = [float(labels.index(str(v))) for v in values]
            ax.set_xticks(range(len(labels)), labels, rotation=20)
        colours = [STATE_COLOURS.get(str(t.get("state")), "gray") for t in chosen]
        ax.scatter(xs, [t["value"] for t in chosen], c=colours, zorder=3)
        for x, t in zip(xs, chosen, strict=True):
            ax.annotate(
                str(t["number"]), (x, t["value"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        ax.set_xlabel(param)
        ax.set_ylabel(search.metric)
        ax.set_title(f"{search.metric} against {param}")
        out.append(_save(plt, fig, f"search_{_slug(param)}", f"{search.metric} against {param}", png_dir))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60] or "x"


def finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(float(value))
