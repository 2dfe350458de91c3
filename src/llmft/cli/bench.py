"""`llmft bench`: llmft's training against an HF Trainer script and TRL's SFTTrainer (see llmft.bench)."""

from __future__ import annotations

from pathlib import Path

import typer


def bench(
    suite: str = typer.Option(
        "short",
        "--suite",
        help="short (llmft vs the HF Trainer script on GPT-2 124M, one round: a few minutes), full (the "
        "documented benchmark, GPT-2 124M and Llama 100M against HF and TRL; about half an hour), ci (tiny), "
        "dpo (DPO vs TRL's DPOTrainer on GPT-2 124M), dpo-ci (tiny) or smollm2 (a real pretrained model, "
        "SmolLM2-135M-Instruct from the package registry, against the HF script).",
    ),
    out: Path = typer.Option(
        Path("bench-out"), "--out", help="Directory for bench.json, data, logs and runs."
    ),
    cache: Path | None = typer.Option(
        None, "--cache", help="Where built models are kept (default OUT/models)."
    ),
    only: list[str] | None = typer.Option(
        None, "--only", help="Run only this scenario (exact name, else a part of names)."
    ),
    contenders: str | None = typer.Option(
        None,
        "--contenders",
        help="Comma list replacing each scenario's contenders, e.g. llmft,hf,trl-packed.",
    ),
    steps: int | None = typer.Option(
        None, "--steps", help="Measured optimizer steps (after the warm-up ones)."
    ),
    warmup: int | None = typer.Option(None, "--warmup", help="Steps left out of the steady-state figures."),
    rounds: int | None = typer.Option(
        None, "--rounds", help="Interleaved rounds; figures are medians over them."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Rows per step for padded contenders."),
    threads: int = typer.Option(
        2, "--threads", help="torch threads in every contender and in the peak matmul."
    ),
    allocator: str = typer.Option(
        "auto", "--allocator", help="auto (jemalloc if installed), jemalloc or glibc."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Kill a contender's run after this many seconds."
    ),
    cli_timing: bool = typer.Option(
        True, "--cli-timing/--no-cli-timing", help="Also time `llmft --help`/validate."
    ),
    peak_seconds: float = typer.Option(
        3.0, "--peak-seconds", help="Length of each fp32 matmul peak measurement."
    ),
) -> None:
    """Benchmark llmft against an HF Trainer script and TRL SFTTrainer: tokens/s, step time, RSS, MFU."""
    from llmft.bench.contenders import SETTINGS
    from llmft.bench.report import print_report, problems, write_json
    from llmft.bench.runner import BenchOptions, run_bench
    from llmft.bench.scenario import suite as make_suite
    from llmft.errors import ConfigError

    if allocator not in ("auto", "jemalloc", "glibc"):
        raise ConfigError(f"--allocator must be auto, jemalloc or glibc, got {allocator!r}")
    try:
        scenarios = make_suite(suite, steps=steps, rounds=rounds, batch_size=batch_size)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if only:  # exact names win; otherwise any scenario whose name contains one of them
        exact = [s for s in scenarios if s.name in only]
        scenarios = exact or [s for s in scenarios if any(o in s.name for o in only)]
    if contenders:
        chosen = [c.strip() for c in contenders.split(",") if c.strip()]
        unknown = [c for c in chosen if c not in SETTINGS]
        if unknown:
            raise ConfigError(f"unknown contender(s) {unknown}", fix=f"choose from {', '.join(SETTINGS)}")
        for s in scenarios:
            s.contenders, s.once = chosen, []
    if warmup is not None:
        for s in scenarios:
            s.warmup = warmup
    if not scenarios:
        raise ConfigError(f"--only {only} matches no scenario of suite {suite}")
    _note_missing_trl(scenarios)
    options = BenchOptions(
        out=out,
        cache=cache or out / "models",
        threads=threads,
        allocator=allocator,
        timeout_s=timeout,
        cli_timing=cli_timing,
        peak_seconds=peak_seconds,
    )
    report = run_bench(scenarios, options, say=lambda t: typer.echo(t, err=True))
    write_json(report, out / "bench.json")
    print_report(report)
    typer.echo(f"wrote {out / 'bench.json'}", err=True)
    if problems(report):
        raise typer.Exit(1)


def _note_missing_trl(scenarios: list) -> None:  # noqa: ANN001 - bench scenarios
    import importlib.util

    if importlib.util.find_spec("trl") is not None:
        return
    typer.echo(
        "note: trl is not installed (pip install 'llmft[bench]'): comparing llmft with the HF Trainer "
        "script only",
        err=True,
    )
    for s in scenarios:
        s.contenders = [c for c in s.contenders if not c.startswith("trl")]
        s.once = [c for c in s.once if not c.startswith("trl")]
