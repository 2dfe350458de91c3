"""A chart (figures.Chart) as SVG text for the report page, drawn without a plotting package.

Lines, bars and labelled points on axes with round-number ticks (a log axis in decades), a title, axis
labels and a legend. Text is `<text>` in the page's sans-serif font, so the charts stay sharp and
searchable; nothing is fetched. The coordinates are those of a 520 x 320 view box, scaled by the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from llmft.report.figures import Chart, Series

WIDTH, HEIGHT = 520, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 14, 30, 44
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
FONT = 'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif" font-size="11"'
GRID, INK = "#e1e4e8", "#1f2328"
MARKERS_BELOW = 12  # points per line under which each point gets a dot


@dataclass
class Axis:
    """Data values ``lo..hi`` onto pixels ``start..end``; ``ticks`` at round values."""

    lo: float
    hi: float
    start: float
    end: float
    ticks: list[float]
    log: bool = False

    def at(self, value: float) -> float:
        if self.log:
            value, lo, hi = math.log10(value), math.log10(self.lo), math.log10(self.hi)
        else:
            lo, hi = self.lo, self.hi
        return self.start + (value - lo) / (hi - lo) * (self.end - self.start)


def render(chart: Chart) -> str:
    x, y = _x_axis(chart), _y_axis(chart)
    body = _grid(chart, x, y) + _marks(chart, x, y) + _labels(chart) + _legend(chart, x, y)
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" '
        f'role="img" {FONT}><title>{escape(chart.title)}</title>{body}</svg>'
    )


# --------------------------------------------------------------------------------------------- axes
def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values (1, 2, 2.5 or 5 times a power of ten apart) from at or below ``lo`` to at or above
    ``hi``; a single value gets a range around it."""
    if hi <= lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def _values(chart: Chart, axis: str) -> list[float]:
    if axis == "x":
        ends = [x + w for s in chart.series for x, w in zip(s.xs, s.widths, strict=False)]
        return [v for s in chart.series for v in s.xs] + ends
    return [v for s in chart.series for v in s.ys] + ([0.0] if chart.kind == "bars" else [])


def _x_axis(chart: Chart) -> Axis:
    start, end = LEFT, WIDTH - RIGHT
    if chart.x_labels:
        return Axis(
            -0.5, len(chart.x_labels) - 0.5, start, end, [float(i) for i in range(len(chart.x_labels))]
        )
    values = _values(chart, "x")
    if chart.log_x:
        return _log_axis(values, start, end, pad=0.15 if chart.kind == "scatter" else 0.0)
    ticks = nice_ticks(*_padded(values, chart.kind == "scatter"))
    return Axis(ticks[0], ticks[-1], start, end, ticks)


def _y_axis(chart: Chart) -> Axis:
    ticks = nice_ticks(*_padded(_values(chart, "y"), chart.kind == "scatter"))
    return Axis(ticks[0], ticks[-1], HEIGHT - BOTTOM, TOP, ticks)


def _padded(values: list[float], pad: bool) -> tuple[float, float]:
    """The values' range; with ``pad`` (points, and their labels) 8% more on each side, so that no point
    sits on the frame."""
    lo, hi = min(values), max(values)
    if not pad:
        return lo, hi
    room = (hi - lo) * 0.08 or abs(lo) * 0.1 or 1.0
    return lo - room, hi + room


def _log_axis(values: list[float], start: float, end: float, pad: float) -> Axis:
    """Decades for ticks; ``pad`` decades of room beyond the values when they are points."""
    low, high = math.log10(min(values)) - pad, math.log10(max(values)) + pad
    if pad == 0:
        low, high = math.floor(low), max(math.ceil(high), math.floor(low) + 1)
    ticks = [10.0**k for k in range(math.ceil(low - 1e-9), math.floor(high + 1e-9) + 1)]
    return Axis(10.0**low, 10.0**high, start, end, ticks, log=True)


def tick_text(value: float, ticks: list[float]) -> str:
    """As few decimals as tell the ticks exactly (0.25 keeps two); very large or small values in the
    shortest form (`1e-05`)."""
    span = max(abs(t) for t in ticks)
    if span >= 1e5 or span < 1e-3:
        return f"{value:.3g}"
    step = min((b - a for a, b in zip(ticks, ticks[1:], strict=False)), default=1.0)
    decimals = next((d for d in range(12) if all(abs(round(t, d) - t) <= step * 1e-6 for t in ticks)), 12)
    return f"{value:.{decimals}f}"


def _grid(chart: Chart, x: Axis, y: Axis) -> str:
    """Grid lines and tick labels, then the plot frame."""
    parts = []
    for value in y.ticks:
        py = y.at(value)
        parts.append(_path(f"M{x.start:.1f},{py:.1f}H{x.end:.1f}", GRID))
        parts.append(_text(x.start - 6, py + 4, tick_text(value, y.ticks), anchor="end"))
    labels = chart.x_labels or [_x_tick(v, x) for v in x.ticks]
    for value, label in zip(x.ticks, labels, strict=True):
        px = x.at(value)
        parts.append(_path(f"M{px:.1f},{y.start:.1f}V{y.end:.1f}", GRID))
        parts.append(_text(px, y.start + 16, label, anchor="middle"))
    frame = f"M{x.start:.1f},{y.end:.1f}H{x.end:.1f}V{y.start:.1f}H{x.start:.1f}Z"
    return "".join(parts) + _path(frame, "#8c959f")


def _x_tick(value: float, x: Axis) -> str:
    return f"{value:g}" if x.log else tick_text(value, x.ticks)


# -------------------------------------------------------------------------------------------- marks
def _marks(chart: Chart, x: Axis, y: Axis) -> str:
    draw = {"line": _line, "bars": _bars, "scatter": _points}[chart.kind]
    return "".join(draw(s, PALETTE[i % len(PALETTE)], x, y) for i, s in enumerate(chart.series))


def _line(series: Series, colour: str, x: Axis, y: Axis) -> str:
    points = [(x.at(a), y.at(b)) for a, b in zip(series.xs, series.ys, strict=True)]
    d = "M" + "L".join(f"{px:.1f},{py:.1f}" for px, py in points)
    out = f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.6" stroke-linejoin="round"/>'
    if len(points) < MARKERS_BELOW:
        out += "".join(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.4" fill="{colour}"/>' for px, py in points)
    return out


def _bars(series: Series, colour: str, x: Axis, y: Axis) -> str:
    out = []
    for left, count, width in zip(series.xs, series.ys, series.widths, strict=True):
        x0, x1, top, base = x.at(left), x.at(left + width), y.at(count), y.at(0.0)
        out.append(
            f'<path d="M{x0:.1f},{base:.1f}V{top:.1f}H{x1:.1f}V{base:.1f}Z" fill="{colour}" '
            'fill-opacity="0.6" stroke="#fff" stroke-width="0.8"/>'
        )
    return "".join(out)


def _points(series: Series, colour: str, x: Axis, y: Axis) -> str:
    out = []
    for i, (a, b) in enumerate(zip(series.xs, series.ys, strict=True)):
        px, py = x.at(a), y.at(b)
        fill = series.colours[i] if i < len(series.colours) else colour
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{fill}"/>')
        if i < len(series.notes):
            out.append(_text(px + 5, py - 5, series.notes[i], size=9))
    return "".join(out)


# ------------------------------------------------------------------------------------------- labels
def _labels(chart: Chart) -> str:
    middle = (LEFT + WIDTH - RIGHT) / 2
    out = _text(middle, 18, chart.title, anchor="middle", size=12, bold=True)
    if chart.xlabel:
        out += _text(middle, HEIGHT - 8, chart.xlabel, anchor="middle")
    if chart.ylabel:
        cy = (TOP + HEIGHT - BOTTOM) / 2
        out += (
            f'<text x="14" y="{cy:.1f}" text-anchor="middle" fill="{INK}" '
            f'transform="rotate(-90 14 {cy:.1f})">{escape(chart.ylabel)}</text>'
        )
    return out


def _legend(chart: Chart, x: Axis, y: Axis) -> str:
    """In the plot corner the data crosses least, when there is more than one series to tell apart."""
    if len(chart.series) < 2:
        return ""
    width = 28 + 6.2 * max(len(s.label) for s in chart.series)
    height = 6 + 15 * len(chart.series)
    left, top = _quiet_corner(chart, x, y, width, height)
    out = [
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{width:.1f}" height="{height}" '
        'fill="#fff" fill-opacity="0.85" stroke="#d0d7de"/>'
    ]
    for i, series in enumerate(chart.series):
        cy, colour = top + 12 + 15 * i, PALETTE[i % len(PALETTE)]
        out.append(_path(f"M{left + 6:.1f},{cy:.1f}h16", colour, width=3))
        out.append(_text(left + 26, cy + 4, series.label, size=10))
    return "".join(out)


def _quiet_corner(chart: Chart, x: Axis, y: Axis, width: float, height: float) -> tuple[float, float]:
    """The top-left point of a ``width`` x ``height`` box in the corner (top right first) holding the
    fewest points of the data, lines sampled between their points."""
    points = []
    for series in chart.series:
        xy = [(x.at(a), y.at(b)) for a, b in zip(series.xs, series.ys, strict=True)]
        points += xy + [
            (x0 + (x1 - x0) * k / 8, y0 + (y1 - y0) * k / 8)
            for (x0, y0), (x1, y1) in zip(xy, xy[1:], strict=False)
            for k in range(1, 8)
        ]
    lefts, tops = (x.end - width - 6, x.start + 6), (y.end + 6, y.start - height - 6)
    corners = [(left, top) for top in tops for left in lefts]

    def crowd(corner: tuple[float, float]) -> int:
        left, top = corner
        return sum(
            left - 4 <= px <= left + width + 4 and top - 4 <= py <= top + height + 4 for px, py in points
        )

    return min(corners, key=crowd)


def _path(d: str, colour: str, width: float = 1.0) -> str:
    return f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{width}"/>'


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11, bold: bool = False) -> str:
    weight = ' font-weight="600"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{INK}"{weight}>'
        f"{escape(text)}</text>"
    )
