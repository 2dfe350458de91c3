"""`llmft train CONFIG --nproc N`: start N training processes here (and more on other machines) through
torchrun's own entry point, ``torch.distributed.run``, in this process.

torchrun's agent starts the workers (each in its own session), watches them every 0.1 s and stops them
all when one fails; on SIGINT/SIGTERM it forwards the signal once, so every worker finishes its step,
the run writes one checkpoint and all exit 130/143. Here its outcome becomes llmft's: the first failed
rank named with its exit code or signal, a stop's exit code passed on. CPU threads are set per process
(cores ÷ local processes, or training.num_threads): torchrun would otherwise pin OMP_NUM_THREADS to 1.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from llmft.errors import ConfigError, TrainingError
from llmft.train.commands import resume_command
from llmft.train.distributed.group import Say, threads_per_process


@dataclass(frozen=True)
class LaunchSpec:
    """Where the processes run: per machine, how many machines, this one's rank, how they meet."""

    nproc: int
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    master_addr: str | None = None
    master_port: int | None = None
    run_id: str = "llmft"


def torchrun_args(spec: LaunchSpec, worker_argv: list[str]) -> list[str]:
    """The torchrun command line (without the program) for ``worker_argv`` (`train CONFIG ...`)."""
    args = ["--nproc-per-node", str(spec.nproc), "--nnodes", str(spec.nnodes), "--max-restarts", "0"]
    if spec.rdzv_endpoint:
        args += ["--rdzv-backend", "c10d", "--rdzv-endpoint", spec.rdzv_endpoint, "--rdzv-id", spec.run_id]
        args += ["--node-rank", str(spec.node_rank)]
    elif spec.nnodes > 1 or spec.master_addr:
        if not spec.master_addr:
            raise ConfigError(
                f"--nnodes {spec.nnodes} needs to know where rank 0 is",
                fix="add --rdzv-endpoint HOST:PORT (or --master-addr HOST --master-port PORT), the same on "
                "every machine",
            )
        args += ["--node-rank", str(spec.node_rank), "--master-addr", spec.master_addr]
        args += ["--master-port", str(spec.master_port or 29500)]
    else:
        args += ["--standalone"]
    return [*args, "-m", "llmft", *worker_argv]


def check_spec(spec: LaunchSpec) -> None:
    if spec.nproc < 1 or spec.nnodes < 1:
        raise ConfigError("--nproc and --nnodes must be at least 1", fix="e.g. --nproc 2")
    if not 0 <= spec.node_rank < spec.nnodes:
        raise ConfigError(
            f"--node-rank {spec.node_rank} is not one of the {spec.nnodes} machines (0 .. {spec.nnodes - 1})",
            fix="give each machine its own --node-rank, from 0",
        )
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        raise ConfigError(
            "--nproc given inside a process a launcher already started (RANK is set)",
            fix="drop --nproc when launching with torchrun, accelerate launch or srun",
        )


def launch(
    spec: LaunchSpec, worker_argv: list[str], threads: int | None, say: Say, command: str | None = None
) -> int:
    """Run the workers to the end; returns the exit code (0, or 128 + signal after a stop). ``command``:
    the `llmft train ...` typed, which a failure's hint to resume repeats."""
    check_spec(spec)
    count = threads_per_process(threads, spec.nproc)
    os.environ["OMP_NUM_THREADS"] = str(count)  # torchrun leaves a set value alone
    say(
        f"launching {spec.nproc} processes on this machine"
        + (f" (machine {spec.node_rank} of {spec.nnodes})" if spec.nnodes > 1 else "")
        + f", {count} threads each"
    )
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    args = get_args_parser().parse_args(torchrun_args(spec, worker_argv))
    try:
        run(args)
    except ChildFailedError as failed:
        raise failure_error(failed, command) from None
    except SignalException as stopped:
        name = signal.Signals(stopped.sigval).name
        say(f"{name}: the processes were asked to checkpoint and stop")
        return 128 + int(stopped.sigval)
    return 0


def failure_error(failed: object, command: str | None = None) -> TrainingError:
    """The first rank that failed, how, and the others' fate: the message of that rank is above."""
    rank, first = failed.get_first_failure()  # type: ignore[attr-defined]
    others = sorted(r for r in failed.failures if r != rank)  # type: ignore[attr-defined]
    how = (
        f"was killed by {first.signal_name()}" if first.exitcode < 0 else f"exited with code {first.exitcode}"
    )
    error = TrainingError(
        f"rank {rank} (pid {first.pid}) {how}; the other processes were stopped"
        + (f" (also ended: rank {', '.join(map(str, others))})" if others else ""),
        fix=f"follow the fix in rank {rank}'s message above; a run that wrote checkpoints continues from the "
        f"last one with `{resume_command(command)}`",
    )
    if first.exitcode > 0:
        error.exit_code = first.exitcode
    return error
