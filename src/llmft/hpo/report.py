"""What a search leaves behind: the results table, ``hpo_results.csv``/``.json`` and ``best_config.yaml``.

Trials are sorted best first: completed trials by the metric, then pruned ones (by their last value),
then failed ones. The best trial is the best *completed* one: a pruned trial never ran to its end.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml
from rich.table import Table

from llmft.atomic import write_atomic
from llmft.config.redact import redact
from llmft.hpo.plan import SearchPlan
from llmft.hpo.trial import TrialRecord, trial_dict

RANK = {"complete": 0, "pruned": 1, "running": 2, "failed": 3}


def sort_trials(records: list[TrialRecord], plan: SearchPlan) -> list[TrialRecord]:
    sign = -1.0 if plan.direction == "maximize" else 1.0

    def key(r: TrialRecord) -> tuple[int, float, int]:
        value = sign * r.value if r.value is not None else float("inf")
        return RANK.get(r.state, 4), value, r.number

    return sorted(records, key=key)


def best_trial(records: list[TrialRecord], plan: SearchPlan) -> TrialRecord | None:
    done = [r for r in sort_trials(records, plan) if r.state == "complete" and r.value is not None]
    return done[0] if done else None


def _write(path: Path, text: str) -> None:
    """Atomic, and safe when several processes of one shared study write the same file."""
    write_atomic(path, text)


def _cell(value: object) -> object:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def results_csv(records: list[TrialRecord], plan: SearchPlan) -> str:
    """One row per trial: number, state, metric, parameters, steps, duration, error, every metric."""
    metric_names = sorted({k for r in records for k in r.metrics if k != plan.metric})
    head = [
        "trial",
        "state",
        plan.metric,
        *plan.paths,
        "steps",
        "duration_s",
        "error",
        *metric_names,
        "trial_dir",
    ]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for r in sort_trials(records, plan):
        writer.writerow(
            [
                r.number,
                r.state,
                r.value,
                *(_cell(r.params.get(p)) for p in plan.paths),
                r.steps,
                None if r.duration_s is None else round(r.duration_s, 2),
                r.error,
                *(r.metrics.get(m) for m in metric_names),
                r.trial_dir,
            ]
        )
    return buf.getvalue()


def results_json(records: list[TrialRecord], plan: SearchPlan, best: TrialRecord | None) -> str:
    data = {
        "metric": plan.metric,
        "direction": plan.direction,
        "backend": plan.backend,
        "max_trials": plan.max_trials,
        "spaces": {s.path: s.describe() for s in plan.spaces},
        "best_trial": None if best is None else best.number,
        "best_value": None if best is None else best.value,
        "best_params": None if best is None else best.params,
        "trials": [r.to_dict() for r in sort_trials(records, plan)],
    }
    return json.dumps(redact(data), indent=2, default=str) + "\n"


def best_config_text(plan: SearchPlan, best: TrialRecord, output_dir: Path) -> str:
    """The best trial's config, runnable with `llmft train` as is: the search off, a fresh output_dir."""
    data = trial_dict(plan, best.params, output_dir)
    head = (
        f"# Best trial {best.number} of the search in {plan.output_dir}: {plan.metric}={best.value:.6g}\n"
        f"# Its values: " + ", ".join(f"{k}={v}" for k, v in best.params.items()) + "\n"
        f"# Train it with: llmft train {plan.output_dir / 'best_config.yaml'}\n"
    )
    return head + yaml.safe_dump(redact(data), sort_keys=False, allow_unicode=True)


def write_results(plan: SearchPlan, records: list[TrialRecord], best: TrialRecord | None) -> dict[str, Path]:
    out = plan.output_dir
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": out / "hpo_results.csv", "json": out / "hpo_results.json"}
    _write(files["csv"], results_csv(records, plan))
    _write(files["json"], results_json(records, plan, best))
    if best is not None:
        files["best_config"] = out / "best_config.yaml"
        _write(files["best_config"], best_config_text(plan, best, out / "best"))
    return files


def results_table(records: list[TrialRecord], plan: SearchPlan, limit: int = 30) -> Table:
    """The trials, best first; the best row in bold."""
    best = best_trial(records, plan)
    title = f"{len(records)} trials, sorted by {plan.metric} ({plan.direction})"
    table = Table(title=title, title_justify="left")
    for name in ("trial", "state", plan.metric, *plan.paths, "steps", "time", "error"):
        table.add_column(
            name,
            justify="right" if name in ("trial", plan.metric, "steps", "time") else "left",
            overflow="fold",
        )
    for r in sort_trials(records, plan)[:limit]:
        row = [
            str(r.number),
            r.state,
            "" if r.value is None else f"{r.value:.4g}",
            *(_show(r.params.get(p)) for p in plan.paths),
            "" if r.steps is None else str(r.steps),
            "" if r.duration_s is None else f"{r.duration_s:.0f}s",
            (r.error or "")[:80],
        ]
        table.add_row(*row, style="bold" if best is not None and r.number == best.number else None)
    if len(records) > limit:
        table.caption = f"{len(records) - limit} more in hpo_results.csv"
    return table


def _show(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
