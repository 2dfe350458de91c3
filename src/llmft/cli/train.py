"""`llmft train CONFIG [key.path=value ...] [--resume [PATH]] [--nproc N ...]`: thin; the work is in
llmft.pipeline, and with --nproc in llmft.train.distributed.launch (which starts this command N times)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from llmft.cli.output import print_notices

# Set by `--nproc` for the processes it starts: the command the user typed, which their hints repeat.
COMMAND_ENV = "LLMFT_TRAIN_COMMAND"


def train(
    config: Path = typer.Argument(..., help="Run config (YAML or JSON; legacy layouts accepted)."),
    overrides: list[str] | None = typer.Argument(
        None, help="Dotted overrides, e.g. training.learning_rate=1e-4"
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier run in output_dir."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue from the newest intact checkpoint in output_dir (a damaged one is skipped and named); "
        "`--resume PATH` (or `--resume=PATH`) continues from that checkpoint folder instead, like "
        "--resume-from.",
    ),
    resume_from: Path | None = typer.Option(
        None,
        "--resume-from",
        help="Continue from this checkpoint folder (`checkpoints/step-N`), also of a finished run.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or notices."),
    nproc: int | None = typer.Option(
        None, "--nproc", help="Train with N processes on this machine (torchrun; gloo on CPU, nccl on GPUs)."
    ),
    nnodes: int = typer.Option(1, "--nnodes", help="Machines taking part (run the command on each)."),
    node_rank: int = typer.Option(0, "--node-rank", help="This machine's number, 0 .. nnodes-1."),
    rdzv_endpoint: str | None = typer.Option(
        None, "--rdzv-endpoint", help="HOST:PORT where the machines meet (torchrun's c10d rendezvous)."
    ),
    master_addr: str | None = typer.Option(None, "--master-addr", help="Rank 0's host (static rendezvous)."),
    master_port: int | None = typer.Option(None, "--master-port", help="Rank 0's port (default 29500)."),
) -> None:
    """Train and evaluate a model as CONFIG says; writes the run directory (model, metrics, config)."""
    from llmft.config.load import inspect_config
    from llmft.errors import ConfigError

    loaded = inspect_config(config, overrides or [])
    if not quiet and _says_notices():
        print_notices(loaded.notices)
    if loaded.config is None:
        raise ConfigError("invalid config", problems=loaded.errors, source=str(config))
    say = (lambda _: None) if quiet else _say
    launch_options = _launch_options(nproc, nnodes, node_rank, rdzv_endpoint, master_addr, master_port)
    command = _command(config, overrides or [], launch_options)
    if nproc is not None or nnodes > 1:
        from llmft.train.distributed.launch import LaunchSpec, launch

        if loaded.config.hpo.enabled:
            raise ConfigError(
                "--nproc trains one run on several processes, but hpo.enabled makes this config a search",
                fix="drop --nproc (hpo.parallel runs trials side by side), or set hpo.enabled: false",
            )

        spec = LaunchSpec(nproc or 1, nnodes, node_rank, rdzv_endpoint, master_addr, master_port)
        worker = _worker_argv(config, overrides or [], overwrite, resume, resume_from, quiet)
        os.environ[COMMAND_ENV] = command  # the workers' hints repeat this command, launch options too
        try:
            code = launch(spec, worker, loaded.config.training.num_threads, say, command)
        finally:
            os.environ.pop(COMMAND_ENV, None)
        raise typer.Exit(code)
    if loaded.config.hpo.enabled:
        from llmft.cli.hpo import search_and_report

        search_and_report(loaded.config, quiet=quiet, overwrite=overwrite, shown=loaded.notices)
        return
    from llmft.pipeline import run

    result = run(
        loaded.config,
        overwrite=overwrite,
        progress=not quiet,
        say=say,
        resume=str(resume_from) if resume_from else resume,
        command=command,
    )
    from llmft.train.distributed.group import detect

    if detect().rank == 0:  # one summary and one line per run, not per process
        if not quiet:
            _print_summary(result.output_dir)
        typer.echo(f"run directory: {result.output_dir}")


def _launch_options(
    nproc: int | None,
    nnodes: int,
    node_rank: int,
    rdzv_endpoint: str | None,
    master_addr: str | None,
    master_port: int | None,
) -> list[str]:
    """The launch options given, as typed: a resume on another number of processes is another run."""
    given = {
        "--nproc": nproc,
        "--nnodes": nnodes if nnodes > 1 else None,
        "--node-rank": node_rank or None,
        "--rdzv-endpoint": rdzv_endpoint,
        "--master-addr": master_addr,
        "--master-port": master_port,
    }
    return [str(part) for name, value in given.items() if value is not None for part in (name, value)]


def _command(config: Path, overrides: list[str], launch_options: list[str]) -> str:
    """The `llmft train ...` that started this run, for the hints to resume it or start over; in a worker
    a launcher started, the launcher's (with its launch options)."""
    from llmft.train.commands import train_command

    return os.environ.get(COMMAND_ENV) or train_command(str(config), overrides, launch_options)


def _worker_argv(
    config: Path, overrides: list[str], overwrite: bool, resume: bool, resume_from: Path | None, quiet: bool
) -> list[str]:
    """This command for each process the launcher starts, without the launch options."""
    argv = ["train", str(config), *overrides]
    argv += ["--overwrite"] * overwrite + ["--resume"] * resume + ["--quiet"] * quiet
    return argv + (["--resume-from", str(resume_from)] if resume_from else [])


def _says_notices() -> bool:
    """The config's notices once per run: not again by each process `--nproc` started (the launcher said
    them), nor by a rank >= 1 of another launcher (rank 0 says them)."""
    from llmft.train.distributed.group import detect

    return COMMAND_ENV not in os.environ and detect().rank == 0


def _print_summary(out: Path) -> None:
    """Steps, time, throughput, final metrics and where things are, on stderr (stdout stays the path)."""
    from rich.console import Console

    from llmft.report.summary import summary_table

    Console(stderr=True).print(summary_table(out))


def _say(text: str) -> None:
    typer.echo(text, err=True)
