"""`llmft synth`: make tiny models and synthetic data sets for tests, demos and smoke runs.

Thin on purpose: parse options, call ``llmft.synth.models`` / ``llmft.synth.data``, print one summary.
Nothing heavy is imported at module level: ``llmft --help`` imports this module and must not load torch.
The choice lists in the help texts mirror ``ARCHS`` and ``TASKS`` (a test keeps them in step).
"""

from __future__ import annotations

from pathlib import Path

import typer

from llmft.cli.help_format import Command, Group

app = typer.Typer(
    cls=Group,
    help="Make synthetic data and tiny models for tests and demos.",
    no_args_is_help=True,
    add_completion=False,
)

ARCH_HELP = "Architecture: gpt2, llama, qwen2, bert, distilbert or t5."
TASK_HELP = "Task: sft, chat, classification, preference, kto or text."


@app.command("model", cls=Command)
def model(
    arch: str = typer.Option(..., "--arch", help=ARCH_HELP),
    out: Path = typer.Option(..., "--out", help="Directory to write the model and tokenizer to."),
    text: Path | None = typer.Option(None, "--text", help="Train the tokenizer on this text file instead."),
    vocab_size: int = typer.Option(1000, "--vocab-size", help="Target tokenizer vocabulary size."),
    hidden_size: int = typer.Option(64, "--hidden-size", help="Hidden size (a multiple of --heads)."),
    layers: int = typer.Option(2, "--layers", help="Number of layers."),
    heads: int = typer.Option(4, "--heads", help="Number of attention heads."),
    seed: int = typer.Option(0, "--seed", help="Seed for the corpus and the random weights."),
) -> None:
    """Build a tiny random-weight model with a locally trained tokenizer (offline, seconds)."""
    from llmft.synth.models import build_tiny_model, parameter_count

    path = build_tiny_model(
        arch,
        out,
        text_file=text,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=layers,
        num_heads=heads,
        seed=seed,
    )
    typer.echo(f"wrote tiny {arch} model to {path} ({parameter_count(path):,} parameters)")


def _count_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for _ in fh)


@app.command("data", cls=Command)
def data(
    task: str = typer.Option(..., "--task", help=TASK_HELP),
    out: Path = typer.Option(..., "--out", help="Directory to write train/validation/test files to."),
    rows: int = typer.Option(200, "--rows", help="Total rows over all splits."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same files."),
    validation_fraction: float = typer.Option(
        0.1, "--validation-fraction", help="Share of rows for validation."
    ),
    test_fraction: float = typer.Option(0.1, "--test-fraction", help="Share of rows for test."),
    style: str | None = typer.Option(
        None, "--style", help="Row layout: 'sharegpt' for chat (default: messages)."
    ),
) -> None:
    """Write a synthetic data set whose answers a tiny model can learn."""
    from llmft.synth.data import write_synthetic_data

    files = write_synthetic_data(
        task,
        out,
        rows=rows,
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        style=style,
    )
    for split, path in files.items():
        typer.echo(f"{split}: {path} ({_count_lines(path)} rows)")
