"""`llmft generate RUN_OR_MODEL_DIR`: batched generation from --prompt, --file or the run's --split."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def generate(
    run: Path = typer.Argument(..., help="A finished run dir (its output_dir) or a saved model dir."),
    prompt: list[str] | None = typer.Option(None, "--prompt", "-p", help="A prompt (repeatable)."),
    file: Path | None = typer.Option(
        None, "--file", "-f", help="Prompts: JSON/JSONL rows in any data format llmft reads, or text lines."
    ),
    split: str | None = typer.Option(None, "--split", help="The run's own `validation` or `test` rows."),
    max_rows: int | None = typer.Option(None, "--max-rows", min=1, help="Use at most this many prompts."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write JSONL here (default: stdout)."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", min=1, help="Longest answer, in tokens."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0: greedy; above 0: sample."),
    top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0, help="Nucleus sampling (when sampling)."),
    top_k: int = typer.Option(0, "--top-k", min=0, help="Top-k sampling; 0 is off (when sampling)."),
    repetition_penalty: float = typer.Option(1.0, "--repetition-penalty", min=0.0, help="1.0 is off."),
    seed: int = typer.Option(0, "--seed", help="Seed for sampling."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Prompts generated at once."),
    system: str | None = typer.Option(None, "--system", help="System prompt (default: the run's own)."),
    show: int = typer.Option(
        0, "--show", min=0, help="Also print this many answers next to their references."
    ),
    compare_base: bool = typer.Option(
        False, "--compare-base", help="Also answer with the adapter off: the base model's answer beside each."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
) -> None:
    """Generate answers with a trained run: batched, KV cache, greedy unless --temperature > 0."""
    from llmft.generate.batch import Sampling
    from llmft.generate.load import load_run
    from llmft.generate.runner import choose_prompts, generate_records, summary, write_records

    if out is not None and not out.parent.is_dir():  # before the slow part, not after it
        from llmft.errors import ConfigError

        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist", fix="create it first")
    loaded = load_run(run)
    prompts = choose_prompts(loaded, prompts=prompt, file=file, split=split, max_rows=max_rows)
    sampling = Sampling(max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed, batch_size)
    tracker = _progress(len(prompts), enabled=not quiet)
    with tracker as on_batch:
        records = generate_records(
            loaded, prompts, sampling, system_prompt=system, on_batch=on_batch, compare_base=compare_base
        )
    if out is None:
        write_records(records, sys.stdout)
    else:
        try:
            with out.open("w", encoding="utf-8") as handle:
                write_records(records, handle)
        except OSError as err:
            from llmft.errors import ConfigError

            raise ConfigError(
                f"cannot write {out}: {err.strerror or err}", fix="pass --out a path in a writable folder"
            ) from None
    if not quiet:
        typer.echo(summary(records, tracker.seconds) + (f"; wrote {out}" if out else ""), err=True)
    if show:
        _show(records[:show])


def _show(records: list[dict[str, object]]) -> None:
    """Answers next to references, for a person to read (stderr: stdout may carry the JSONL)."""
    from rich.console import Console
    from rich.table import Table

    compared = any("base_output" in r for r in records)
    columns = ["prompt", "reference", *(["base model"] if compared else []), "output", "stop"]
    table = Table(*columns, show_lines=True)
    for r in records:
        base = [str(r.get("base_output", ""))] if compared else []
        table.add_row(
            str(r["prompt"]), str(r.get("reference", "")), *base, str(r["output"]), str(r["stop_reason"])
        )
    Console(stderr=True).print(table)


class _progress:
    """A rich bar with tokens/s in a terminal, a line per batch elsewhere; yields the per-batch callback."""

    def __init__(self, total: int, enabled: bool) -> None:
        from rich.console import Console

        self.total, self.enabled = total, enabled
        self.seconds = 0.0  # generation time so far (model.generate calls), for the summary's tokens/s
        self.console = Console(stderr=True)
        self.bar = None

    def __enter__(self):  # noqa: ANN204
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if self.enabled and self.console.is_terminal:
            self.bar = Progress(
                TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[speed]}"),
                TimeElapsedColumn(), console=self.console,
            )  # fmt: skip
            self.bar.__enter__()
            self.task = self.bar.add_task("generate", total=self.total, speed="")
        return self.update

    def update(self, progress: object) -> None:
        self.seconds = progress.seconds  # type: ignore[attr-defined]
        speed = f"{progress.tokens_per_second:,.0f} tok/s"  # type: ignore[attr-defined]
        if self.bar is not None:
            self.bar.update(self.task, completed=progress.done, speed=speed)  # type: ignore[attr-defined]
        elif self.enabled:
            typer.echo(f"generate: {progress.done}/{progress.total} prompts, {speed}", err=True)  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)  # type: ignore[arg-type]
