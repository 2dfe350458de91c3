"""The report page: plain HTML and CSS with the charts as inline SVG. No script, no external font,
stylesheet or image: it opens the same offline, from an e-mail attachment, years later."""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone

import yaml

from llmft.report.figures import Figure, finite
from llmft.report.runs import Run, Search
from llmft.run_record import seconds_text
from llmft.tracking.base import flatten

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1200px;
color:#1f2328;padding:0 16px;line-height:1.4}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:32px}
.muted{color:#59636e;font-size:.9em}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.88em}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{font-weight:600;background:#fff8c5}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
figure{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:6px;background:#fff}
figcaption{font-size:.85em;color:#59636e;text-align:center}
svg.chart{width:100%;height:auto;display:block}
pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:.82em;max-height:420px}
td.text{white-space:pre-wrap;max-width:480px;font-family:ui-monospace,monospace;font-size:.85em}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}" if finite(value) else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)


def table(head: list[str], rows: list[list[object]], best: int | None = None) -> str:
    def cell(value: object) -> str:
        css = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        return f"<td{css}>{esc(fmt(value))}</td>"

    body = "".join(
        ('<tr class="best">' if i == best else "<tr>") + "".join(cell(v) for v in row) + "</tr>"
        for i, row in enumerate(rows)
    )
    return "<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + f"</tr></thead>{body}</table>"


def figures(items: list[Figure]) -> str:
    if not items:
        return '<p class="muted">nothing to plot</p>'
    # the chart's own title names it (the PNG beside the report needs it too): no caption repeating it
    cards = "".join(f'<figure aria-label="{esc(f.title)}">{f.svg}</figure>' for f in items)
    return f'<div class="grid">{cards}</div>'


def summary(runs: list[Run]) -> str:
    """Steps, time, throughput and how each run ended."""
    rows = []
    for run in runs:
        info, last = run.info, last_train(run)
        rows.append(
            [
                run.name,
                info.get("task", ""),
                info.get("steps", last.get("step", "")),
                run_time(info),
                last.get("tokens_per_second", ""),
                info.get("tokens_seen", last.get("tokens_seen", "")),
                info.get("stop_reason", "no run.json (still running, or killed)"),
                str(run.path),
            ]
        )
    head = ["run", "task", "steps", "time", "tokens/s", "tokens seen", "ended", "folder"]
    return table(head, rows)


def last_train(run: Run) -> dict[str, object]:
    train = [r for r in run.records if "loss" in r]
    return train[-1] if train else {}


def duration(info: dict[str, object]) -> str:
    try:
        start = datetime.fromisoformat(str(info["started"]))
        end = datetime.fromisoformat(str(info["finished"]))
    except (KeyError, ValueError):
        return ""
    seconds = (end - start).total_seconds()
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def run_time(info: dict[str, object]) -> str:
    """The training's time as the run's log line said it (run.json's ``train_seconds``), then the whole
    run's (loading, evaluation and saving too); a run from before ``train_seconds``: the whole run's."""
    whole = duration(info)
    seconds = info.get("train_seconds")
    if not isinstance(seconds, (int, float)):
        return whole
    return f"{seconds_text(float(seconds))} training" + (f", {whole} in all" if whole else "")


def final_table(runs: list[Run]) -> str:
    keys = list(dict.fromkeys(k for run in runs for k in run.final))
    if not keys:
        return '<p class="muted">no final evaluation (eval_results.json) in these runs</p>'
    return table(["run", *keys], [[run.name, *(run.final.get(k, "") for k in keys)] for run in runs])


def data_section(run: Run) -> str:
    """Rows kept and dropped (and why) per split, truncation and token lengths."""
    report = run.data_report
    splits = report.get("splits") or {}
    if not splits:
        return f'<p class="muted">{esc(run.name)}: no data_report.json</p>'
    rows = []
    for split, s in splits.items():  # type: ignore[union-attr]
        dropped = ", ".join(f"{n} {why}" for why, n in (s.get("dropped") or {}).items()) or "none"
        p = s.get("length_percentiles") or {}
        rows.append(
            [
                split,
                s.get("rows_in"),
                s.get("kept"),
                dropped,
                s.get("truncated"),
                s.get("dropped_too_long"),
                s.get("trained_tokens"),
                p.get("p50"),
                p.get("p90"),
                p.get("max"),
            ]
        )
    head = [
        "split",
        "rows in",
        "kept",
        "dropped (why)",
        "truncated",
        "too long",
        "trained tokens",
        "p50",
        "p90",
        "max",
    ]
    origin = f'<p class="muted">{esc(run.name)}: {esc(report.get("origin", ""))}, format '
    origin += f"{esc(report.get('format', ''))}, template {esc(report.get('template', ''))}</p>"
    return origin + table(head, rows)


def config_section(runs: list[Run]) -> str:
    flat = [flatten(run.config) for run in runs]
    parts = []
    if len(runs) > 1:
        keys = sorted({k for f in flat for k in f})
        differ = [k for k in keys if len({json.dumps(f.get(k), default=str) for f in flat}) > 1]
        if differ:
            parts.append(
                table(
                    ["setting", *(r.name for r in runs)],
                    [[k, *(f.get(k, "—") for f in flat)] for k in differ],
                )
            )
        else:
            parts.append('<p class="muted">the runs have the same config</p>')
    for run in runs:
        text = yaml.safe_dump(run.config, sort_keys=False, allow_unicode=True)
        parts.append(
            f"<details><summary>config.yaml of {esc(run.name)}</summary><pre>{esc(text)}</pre></details>"
        )
    return "".join(parts)


def samples_section(runs: list[Run]) -> str:
    parts = []
    for run in runs:
        if not run.samples:
            continue
        keys = list(dict.fromkeys(k for row in run.samples for k in row))
        rows = "".join(
            "<tr>" + "".join(f'<td class="text">{esc(fmt(row.get(k, "")))}</td>' for k in keys) + "</tr>"
            for row in run.samples
        )
        head = "".join(f"<th>{esc(k)}</th>" for k in keys)
        parts.append(f"<h3>{esc(run.name)}</h3><table><thead><tr>{head}</tr></thead>{rows}</table>")
    return "".join(parts)


def trials_table(search: Search) -> str:
    results = search.results
    trials = results.get("trials") or []
    params = list(results.get("spaces") or {})  # type: ignore[arg-type]
    best = results.get("best_trial")
    rows = [
        [
            t.get("number"),
            t.get("state"),
            t.get("value"),
            *((t.get("params") or {}).get(p, "") for p in params),
            t.get("steps"),
            round(float(t["duration_s"]), 1) if t.get("duration_s") else "",
            (t.get("error") or "")[:120],
        ]
        for t in trials  # type: ignore[union-attr]
    ]
    best_row = next((i for i, t in enumerate(trials) if t.get("number") == best), None)  # type: ignore[arg-type]
    head = ["trial", "state", search.metric, *params, "steps", "seconds", "error"]
    caption = (
        f'<p class="muted">{len(rows)} trials, {esc(results.get("backend", ""))}, '
        f"sorted by {esc(search.metric)} "
        f"({esc(results.get('direction', ''))}); the best one highlighted</p>"
    )
    return caption + table(head, rows, best=best_row)


def page(title: str, sections: list[tuple[str, str]]) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(
        f"<section><h2>{esc(name)}</h2>{content}</section>" for name, content in sections if content
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{esc(title)}</h1><p class="muted">written by llmft report, {stamp}</p>{body}</body></html>\n'
    )
