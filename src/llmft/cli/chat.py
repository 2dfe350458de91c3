"""`llmft chat RUN`: talk to a trained run in the terminal (its chat template, streamed answers)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def chat(
    run: Path = typer.Argument(..., help="A finished run dir (its output_dir) or a saved model dir."),
    system: str | None = typer.Option(None, "--system", help="System prompt (default: the run's own)."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Longest answer, in tokens."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0: greedy; above 0: sample."),
    top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0, help="Nucleus sampling (when sampling)."),
    top_k: int = typer.Option(0, "--top-k", min=0, help="Top-k sampling; 0 is off (when sampling)."),
    repetition_penalty: float = typer.Option(1.0, "--repetition-penalty", min=0.0, help="1.0 is off."),
    seed: int = typer.Option(0, "--seed", help="Seed for sampling."),
) -> None:
    """Chat with a trained run: multi-turn, streamed; /reset starts over, /exit quits, /help lists these."""
    from llmft.generate.batch import Sampling
    from llmft.generate.chat import chat_loop, check_chat
    from llmft.generate.load import load_run

    loaded = load_run(run)
    check_chat(loaded)
    sampling = Sampling(max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed, batch_size=1)
    chat_loop(loaded, sampling, system_prompt=system, out=sys.stdout)
