"""`llmft export RUN --format gguf`: the trained model (merged, if an adapter) as a single GGUF file.

Thin: parse options, call ``llmft.export.gguf``, print what was written. Nothing heavy at import time.
"""

from __future__ import annotations

from pathlib import Path

import typer

QUANT_HELP = (
    "Storage of the weight matrices: f32, f16, bf16, q8_0, or llama.cpp's mixes q6_k, q5_k_m, q4_k_m, "
    "q4_0 (the output head, and in the _M mixes attn_v/ffn_down of some layers, get Q6_K; norms and "
    "biases stay f32)."
)


def export(
    run: Path = typer.Argument(
        ..., help="Run directory (training output_dir) or a saved adapter/model folder."
    ),
    format: str = typer.Option("gguf", "--format", help="Output format: gguf."),  # noqa: A002 - the CLI word
    quant: str = typer.Option("f16", "--quant", help=QUANT_HELP),
    out: Path | None = typer.Option(None, "--out", help="File to write (default: RUN/model-QUANT.gguf)."),
    base: str | None = typer.Option(
        None, "--base", help="Base model (folder, Hub id or .gguf file), if it moved since training."
    ),
) -> None:
    """Export the trained model for llama.cpp and other GGUF readers (Llama, Mistral, Qwen2, GPT-2)."""
    from llmft.errors import ExportError
    from llmft.export.gguf import FORMATS, export_gguf
    from llmft.export.source import resolve_source

    if format not in FORMATS:
        raise ExportError(
            f"unknown --format `{format}`", fix=f"use one of: {', '.join(FORMATS)}", where="--format"
        )
    result = export_gguf(resolve_source(run, base=base), out, quant=quant)
    types = ", ".join(f"{count} {kind}" for kind, count in sorted(result.tensor_types.items()))
    size = result.path.stat().st_size / 2**20
    typer.echo(f"wrote {result.path} ({result.arch}, {size:.1f} MiB; tensors: {types})")
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
