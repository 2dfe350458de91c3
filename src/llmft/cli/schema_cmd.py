"""`llmft schema [--markdown]`: the config's JSON Schema (editor completion) or its Markdown reference."""

from __future__ import annotations

import json

import typer


def schema(markdown: bool = typer.Option(False, "--markdown", help="Print docs/CONFIG.md instead.")) -> None:
    """Print the JSON Schema of the run config (or, with --markdown, the reference docs)."""
    if markdown:
        from llmft.config.docs import render_config_markdown

        typer.echo(render_config_markdown(), nl=False)
        return
    from llmft.config.schema import RunConfig

    typer.echo(json.dumps(RunConfig.model_json_schema(), indent=2))
