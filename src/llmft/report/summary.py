"""The short table `llmft train` prints at the end: steps, time, throughput, final metrics, where things are.

Read back from the run folder (run.json, eval_results.json, metrics.jsonl), so it shows what was written.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from llmft.report.html import last_train, run_time
from llmft.report.runs import load_run
from llmft.run_dir import RunDir

COUNTS = ("_tokens", "_rows", "_samples")


def summary_rows(out: Path) -> list[tuple[str, str]]:
    run = load_run(out)
    info, last = run.info, last_train(run)
    rows = [
        ("steps", f"{info.get('steps', last.get('step', '?'))} ({info.get('stop_reason', 'no run.json')})"),
        ("time", run_time(info) or "?"),
    ]
    if info.get("precision"):
        rows.append(("precision", str(info["precision"])))
    if "tokens_per_second" in last:
        rows.append(("tokens/s", f"{float(last['tokens_per_second']):,.0f}"))  # type: ignore[arg-type]
    rows += [(k, f"{v:.4g}") for k, v in run.final.items() if not k.endswith(COUNTS)]
    files = RunDir(out)
    rows += [("model", str(info.get("model_dir", files.model_dir))), ("metrics", str(files.metrics_file))]
    for name, where in (info.get("tracking") or {}).items():  # type: ignore[union-attr]
        rows.append((name, _where(name, where)))
    rows.append(("report", f"llmft report {out}"))
    return rows


def _where(name: str, where: dict[str, str]) -> str:
    if name == "mlflow":
        return f"run {where.get('run_id')} at {where.get('uri')}"
    if name == "wandb":
        return (
            where.get("url")
            or f"offline run {where.get('id')} in {where.get('dir')} (`wandb sync` uploads it)"
        )
    return where.get("dir", "")


def summary_table(out: Path) -> Table:
    table = Table(title=f"run {out}", title_justify="left", show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in summary_rows(out):
        table.add_row(key, value)
    return table
