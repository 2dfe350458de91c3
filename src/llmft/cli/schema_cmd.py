"""`llmft schema`: the config's JSON Schema, for editor completion and CI checks."""

from __future__ import annotations

import json

import typer


def schema() -> None:
    """Print the JSON Schema of the run config."""
    from llmft.config.schema import RunConfig

    typer.echo(json.dumps(RunConfig.model_json_schema(), indent=2))
