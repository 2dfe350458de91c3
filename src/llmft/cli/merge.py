"""`llmft merge RUN --out DIR`: the adapter merged into its base, saved as a model transformers loads alone.

Thin: parse options, call ``llmft.export.merge``, print what was written. Nothing heavy at import time.
"""

from __future__ import annotations

from pathlib import Path

import typer

DTYPE_HELP = "Weights dtype: auto (the base's), float32, bfloat16 or float16. Merging itself is in float32."


def merge(
    run: Path = typer.Argument(..., help="Run directory (training output_dir) or a saved adapter folder."),
    out: Path = typer.Option(..., "--out", help="Folder to write the merged model to (new or empty)."),
    dtype: str = typer.Option("auto", "--dtype", help=DTYPE_HELP),
    base: str | None = typer.Option(
        None, "--base", help="Base model (folder, Hub id or .gguf file), if it moved since training."
    ),
    max_shard_size: str = typer.Option(
        "2GB", "--max-shard-size", help="Largest safetensors shard, e.g. 5GB."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace what is in --out."),
) -> None:
    """Merge a LoRA adapter into its base model (with trained heads, tokenizer, chat template)."""
    from llmft.export.merge import merge_to_dir
    from llmft.export.source import resolve_source

    source = resolve_source(run, base=base)
    result = merge_to_dir(source, out, dtype=dtype, max_shard_size=max_shard_size, overwrite=overwrite)
    typer.echo(
        f"wrote {result.out}: {source.model_dir} merged into {source.base}, "
        f"{result.parameters:,} parameters in {result.dtype}, "
        f"{len(result.shards)} safetensors file(s)"
    )
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
