"""PNG plots of a search (matplotlib, an optional package): the metric per trial over time, and the
metric against each parameter. Without matplotlib the plots are skipped, and the caller says so."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from llmft.hpo.plan import SearchPlan
from llmft.hpo.report import sort_trials
from llmft.hpo.trial import TrialRecord

COLOURS = {"complete": "tab:blue", "pruned": "tab:orange", "failed": "tab:red", "running": "tab:gray"}


def plots_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def write_plots(plan: SearchPlan, records: list[TrialRecord]) -> list[Path]:
    """Write the plots into ``OUTPUT/plots``; returns the files (none without matplotlib or values)."""
    if not plots_available() or not any(r.value is not None for r in records):
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = plan.output_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    files = [_over_time(plt, plan, records, out / "metric_over_time.png")]
    for space in plan.spaces:
        files.append(_against(plt, plan, records, space.path, space.log, out / f"metric_vs_{space.path}.png"))
    return files


def _over_time(plt: object, plan: SearchPlan, records: list[TrialRecord], path: Path) -> Path:
    """Each trial's value at the time it ended, and the best value so far as a step line."""
    with_values = [r for r in records if r.value is not None and r.finished is not None]
    t0 = min((r.started or r.finished for r in records if r.finished), default=0.0)  # type: ignore[type-var]
    fig, ax = plt.subplots(figsize=(7, 4))  # type: ignore[attr-defined]
    for state in ("complete", "pruned"):
        chosen = [r for r in with_values if r.state == state]
        if not chosen:
            continue
        ax.scatter(
            [(r.finished - t0) / 60 for r in chosen],
            [r.value for r in chosen],  # type: ignore[operator]
            c=COLOURS[state],
            label=state,
            zorder=3,
        )
        for r in chosen:
            ax.annotate(
                str(r.number),
                ((r.finished - t0) / 60, r.value),
                fontsize=7,  # type: ignore[operator]
                xytext=(3, 3),
                textcoords="offset points",
            )
    best_x, best_y, best = [], [], None
    for r in sorted((r for r in with_values if r.state == "complete"), key=lambda r: r.finished):  # type: ignore[arg-type, return-value]
        if best is None or plan.better(r.value, best):  # type: ignore[arg-type]
            best = r.value
        best_x.append((r.finished - t0) / 60)  # type: ignore[operator]
        best_y.append(best)
    if best_x:
        ax.step(best_x, best_y, where="post", color="black", linewidth=1, label="best so far")
    ax.set_xlabel("minutes since the first trial started")
    ax.set_ylabel(plan.metric)
    ax.set_title(f"{plan.metric} per trial ({plan.direction})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)  # type: ignore[attr-defined]
    return path


def _against(
    plt: object, plan: SearchPlan, records: list[TrialRecord], param: str, log: bool, path: Path
) -> Path:
    """The metric against one parameter; a list of choices becomes categories in their written order."""
    chosen = [r for r in sort_trials(records, plan) if r.value is not None and param in r.params]
    values = [r.params[param] for r in chosen]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    fig, ax = plt.subplots(figsize=(6, 4))  # type: ignore[attr-defined]
    if numeric:
        xs = values
        positive = [float(v) for v in values if float(v) > 0]  # type: ignore[arg-type]
        wide = len(positive) == len(values) and bool(positive) and max(positive) / min(positive) >= 100
        if log or wide:
            ax.set_xscale("log")
    else:
        labels = list(dict.fromkeys(str(v) for v in values))
        xs = [labels.index(str(v)) for v in values]
        ax.set_xticks(range(len(labels)), labels, rotation=20)
    ax.scatter(xs, [r.value for r in chosen], c=[COLOURS.get(r.state, "gray") for r in chosen], zorder=3)
    ax.set_xlabel(param)
    ax.set_ylabel(plan.metric)
    ax.set_title(f"{plan.metric} against {param}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)  # type: ignore[attr-defined]
    return path
