"""The report's charts: what each one shows (a ``Chart``: its series, axes and title), drawn twice from the
same description: SVG text for the HTML, by llmft itself (report/svg.py; the page needs no plotting
package), and a PNG file for a README or a paper, by matplotlib when it is installed (report/png.py)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from llmft.report import png, svg
from llmft.report.runs import Run, Search

TRAIN_CURVES = (
    ("loss", "training loss"),
    ("learning_rate", "learning rate"),
    ("tokens_per_second", "throughput (tokens/s)"),
    ("grad_norm", "gradient norm"),
    # online RL (grpo, rloo; absent from other runs, so not drawn there): docs/GETTING_STARTED.md reads them
    ("reward", "mean reward"),
    ("frac_reward_zero_std", "share of prompts whose answers all scored alike"),
    ("completions/mean_length", "completion length (tokens)"),
    ("entropy", "entropy of the sampled tokens"),
    ("kl", "KL to the reference"),
)
COUNTS = ("_tokens", "_rows", "_samples")  # eval counts, not curves
STATE_COLOURS = {"complete": "#1f77b4", "pruned": "#ff7f0e", "failed": "#d62728", "running": "#7f7f7f"}


@dataclass
class Series:
    """One line, set of bars or set of points. ``widths``: each bar's width (bars start at their x)."""

    label: str
    xs: list[float]
    ys: list[float]
    widths: list[float] = field(default_factory=list)
    colours: list[str] = field(default_factory=list)  # per point (scatter), else the palette's
    notes: list[str] = field(default_factory=list)  # a label beside each point (scatter)


@dataclass
class Chart:
    """What one chart shows; ``kind`` is line, bars or scatter. ``x_labels`` makes x categorical (point i
    at position i), ``log_x`` logarithmic."""

    name: str  # file stem of its PNG
    title: str
    kind: str
    series: list[Series]
    xlabel: str = ""
    ylabel: str = ""
    log_x: bool = False
    x_labels: list[str] = field(default_factory=list)


@dataclass
class Figure:
    name: str  # file stem of its PNG
    title: str
    svg: str


def draw(charts: list[Chart], png_dir: Path | None) -> list[Figure]:
    """Each chart as inline SVG; also as ``png_dir/NAME.png`` when a folder is given (matplotlib there)."""
    for chart in charts:
        if png_dir is not None:
            png.save(chart, png_dir / f"{chart.name}.png")
    return [Figure(c.name, c.title, svg.render(c)) for c in charts]


def _curve(runs: list[Run], key: str, title: str) -> Chart | None:
    drawn = [(run, [(s, v) for s, v in run.series(key) if finite(v)]) for run in runs]
    series = [Series(run.name, [float(s) for s, _ in p], [v for _, v in p]) for run, p in drawn if p]
    if not series:
        return None
    return Chart(f"curve_{_slug(key)}", title, "line", series, xlabel="step")


def curves(runs: list[Run]) -> list[Chart]:
    """Training curves, then every evaluation metric, each with the runs overlaid."""
    keys = list(TRAIN_CURVES)
    evals = dict.fromkeys(
        k for run in runs for k in run.keys() if k.startswith("eval_") and not k.endswith(COUNTS)
    )
    keys += [(k, k.removeprefix("eval_").replace("_", " ") + " (validation)") for k in evals]
    found = (_curve(runs, key, title) for key, title in keys)
    return [c for c in found if c is not None]


def length_histograms(runs: list[Run]) -> list[Chart]:
    """Token lengths per split, one chart per run (from data_report.json's length_histogram)."""
    out = []
    for index, run in enumerate(runs):
        splits = {
            split: stats.get("length_histogram")
            for split, stats in (run.data_report.get("splits") or {}).items()  # type: ignore[union-attr]
            if isinstance(stats, dict) and (stats.get("length_histogram") or {}).get("counts")
        }
        if not splits:
            continue
        series = []
        for split, hist in splits.items():
            edges, counts = hist["edges"], hist["counts"]  # type: ignore[index]
            widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
            series.append(Series(split, [float(e) for e in edges[:-1]], [float(c) for c in counts], widths))
        name = f"lengths_{index}_{_slug(run.name)}"
        title = f"token lengths: {run.name}"
        out.append(Chart(name, title, "bars", series, xlabel="tokens per example", ylabel="examples"))
    return out


def search_figures(search: Search) -> list[Chart]:
    """The metric against each searched parameter (log axis for wide positive ranges), coloured by state."""
    trials = [t for t in search.results.get("trials", []) if finite(t.get("value"))]  # type: ignore[union-attr]
    out = []
    for param in search.results.get("spaces", {}) or {}:  # type: ignore[union-attr]
        chosen = [t for t in trials if param in (t.get("params") or {})]
        if not chosen:
            continue
        values = [t["params"][param] for t in chosen]
        labels: list[str] = []
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            xs = [float(v) for v in values]
        else:
            labels = list(dict.fromkeys(str(v) for v in values))
            xs = [float(labels.index(str(v))) for v in values]
        points = Series(
            "trials",
            xs,
            [float(t["value"]) for t in chosen],
            colours=[STATE_COLOURS.get(str(t.get("state")), "#7f7f7f") for t in chosen],
            notes=[str(t["number"]) for t in chosen],
        )
        log = not labels and min(xs) > 0 and max(xs) / min(xs) >= 100
        title = f"{search.metric} against {param}"
        out.append(
            Chart(f"search_{_slug(param)}", title, "scatter", [points], param, search.metric, log, labels)
        )
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60] or "x"


def finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
