"""`llmft serve RUN_OR_MODEL_DIR`: an OpenAI-compatible HTTP server on a trained run (FastAPI + uvicorn)."""

from __future__ import annotations

from pathlib import Path

import typer


def serve(
    run: Path = typer.Argument(..., help="A finished run dir (its output_dir) or a saved model dir."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (0.0.0.0 opens it to the network)."
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="LLMFT_API_KEY",
        help="Require `Authorization: Bearer KEY` (not on /health).",
    ),
    model_name: str | None = typer.Option(
        None, "--model-name", help="The model id clients ask for (default: the run dir's name)."
    ),
    max_batch: int = typer.Option(16, "--max-batch", min=1, help="Rows generated together at most."),
    max_queue: int = typer.Option(64, "--max-queue", min=1, help="Requests waiting at most; more get 429."),
    max_tokens: int = typer.Option(
        256, "--max-tokens", min=1, help="Answer length when a request gives none."
    ),
    grace_period: float = typer.Option(
        30.0, "--grace-period", min=0.0, help="Seconds in-flight requests get to finish after SIGTERM."
    ),
    device: str | None = typer.Option(None, "--device", help="cuda, cpu, ... (default: CUDA when present)."),
) -> None:
    """Serve a trained run over an OpenAI-compatible API (chat, completions, streaming, batched)."""
    from llmft.serve.run import ServeOptions, run_server

    options = ServeOptions(
        host=host, port=port, api_key=api_key, model_name=model_name, max_batch=max_batch,
        max_queue=max_queue, max_tokens=max_tokens, grace_period_s=grace_period, device=device,
    )  # fmt: skip
    run_server(run, options, say=lambda line: typer.echo(line, err=True))
