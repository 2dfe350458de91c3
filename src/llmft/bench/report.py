"""The benchmark's outputs: a rich table per scenario on the terminal, and the full JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

# Fields every contender's median must carry, with a check each (the smoke test uses these too).
REQUIRED: dict[str, str] = {
    "real_tokens_per_second": "positive",
    "seconds_per_step": "positive",
    "time_to_first_step_s": "positive",
    "peak_rss_mb": "positive",
    "model_flops_per_second": "positive",
    "mfu": "fraction",
    "eval_loss": "finite",
}


def problems(report: dict) -> list[str]:
    """What is missing or not sane in a report: empty when every contender has every field."""
    out = []
    for scenario in report["scenarios"]:
        for name, c in scenario["contenders"].items():
            for key, rule in REQUIRED.items():
                value = c["median"].get(key)
                ok = isinstance(value, int | float) and math.isfinite(value)
                if ok and rule == "positive":
                    ok = value > 0
                if ok and rule == "fraction":
                    ok = 0 < value < 1.5  # above 1 only if the peak was measured under heavier load
                if not ok:
                    out.append(f"{scenario['name']} {name}: {key} = {value!r}")
            if c["errors"]:
                out.append(
                    f"{scenario['name']} {name}: {len(c['errors'])} failed run(s): {c['errors'][0]['error']}"
                )
    return out


def write_json(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    console.width = max(console.width, 150)  # the table needs it; a pipe or CI log reports 80
    m = report["machine"]
    console.print(
        f"machine: {m['threads']} threads, {m['allocator']}, fp32 matmul peak {m['peak_gflops']:.0f} GFLOP/s"
    )
    for s in report["scenarios"]:
        st = s["stats"]
        title = (
            f"{s['name']}: {s['model'].get('params', 0) / 1e6:.0f}M params, {st['train_examples']} rows "
            f"(mean {st['mean_length']:.0f} tokens), {s['warmup_steps']} warm-up + measured steps, "
            f"median of {s['rounds']}"
        )
        table = Table(title=title, title_justify="left")
        for col in (
            "contender",
            "batch",
            "real tok/s",
            "llmft ×",
            "tok/cpu-s",
            "llmft ×cpu",
            "s/step",
            "1st step s",
            "RSS MB train",
            "RSS MB all",
            "GFLOP/s",
            "MFU",
            "eval loss",
            "Δloss",
            "pad %",
        ):
            table.add_column(col, justify="left" if col == "contender" else "right")
        for name, c in s["contenders"].items():
            md = c["median"]
            ratio = s["llmft_ratio_to"].get(name, {})
            table.add_row(
                name,
                f"{c['batch_size']}{'p' if c['packed'] else ''}",
                _fmt(md["real_tokens_per_second"], ".1f"),
                _fmt(ratio.get("tokens_per_second"), ".2f"),
                _fmt(md["real_tokens_per_cpu_second"], ".1f"),
                _fmt(ratio.get("tokens_per_cpu_second"), ".2f"),
                _fmt(md["seconds_per_step"], ".2f"),
                _fmt(md["time_to_first_step_s"], ".1f"),
                _fmt(md.get("train_peak_rss_mb"), ".0f"),
                _fmt(md["peak_rss_mb"], ".0f"),
                _fmt(md["model_flops_per_second"] / 1e9 if md["model_flops_per_second"] else None, ".1f"),
                _fmt(md["mfu"] * 100 if md["mfu"] == md["mfu"] else None, ".1f") + "%",
                _fmt(md["eval_loss"], ".4f"),
                _fmt(ratio["eval_loss_rel_diff"] * 100, "+.2f") + "%" if ratio else "",
                _fmt(md["pad_fraction"] * 100, ".0f"),
            )
        console.print(table)
    if "cli" in report:
        c = report["cli"]
        console.print(
            f"llmft --help: {c['help_seconds']:.2f}s, llmft validate: {c['validate_seconds']:.2f}s "
            f"(median of {c['repeats']})"
        )
    for line in problems(report):
        console.print(f"[red]problem:[/red] {line}")
