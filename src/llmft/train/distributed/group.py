"""Training on several processes (and machines) with the same optimizer steps as on one.

A process learns its place from the environment its launcher set: torchrun (what ``llmft train --nproc``
starts, launch.py), ``accelerate launch`` (RANK, WORLD_SIZE, LOCAL_RANK) or SLURM's ``srun``
(SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID). The process group is accelerate's (``PartialState``, which
the trainer's ``Accelerator`` then reuses): gloo on CPU, nccl on GPUs.

Why an N-process run makes the same optimizer steps as a 1-process run with the same global batch:

- ``batch_size`` is per process (a forward pass), the global batch batch_size × N × accumulation. The
  batches of an epoch are ``batch_order(lengths, batch_size, seed, epoch)`` whatever N is, grouped into
  windows of accumulation × N batches, one window per optimizer step: which rows form a step depends on
  (seed, epoch, step), batch_size and the global batch, never on N alone. With N = 1 this is exactly the
  single-process order, so N processes with accumulation k make the steps of 1 process with accumulation
  N·k, batch for batch (the same rows, the same padding, the same shapes).
- Rank r trains on batches r, r + N, r + 2N, ... of each window (strided, so a part-full last window
  leaves the later ranks one batch fewer, or none). Length grouping and packing are decided before the
  batches are shared (packing over all rows, grouping inside batch_order), so they work unchanged per rank
  without changing which rows form a step.
- The loss is token-weighted across processes: before the forward passes one all-reduce sums the window's
  loss units (and tokens) over all ranks, and every micro-batch's summed loss is divided by that global
  count. After the window one all-reduce SUMS the gradients (and the step's loss): every rank then holds
  exactly the gradient one process computes over the whole window, with no mean of per-rank means and no
  division by N to undo. A rank without rows in a step adds zeros.
- The gradients go in one flat buffer, once per optimizer step. torch's DistributedDataParallel wrapper is
  not used for this: its gradient hooks are armed by its own forward, which the selective LM head
  (train/loss.py) bypasses by calling the backbone directly, so DDP would silently skip the sync; and its
  overlap of communication with the backward pays off for large gradients, which is FSDP's and
  DeepSpeed's ground (strategies.py), not LoRA's megabytes.
- Rank 0's trainable weights are broadcast at set-up; after that every rank applies the same update, so
  all ranks hold the same weights and optimizer state. Rank 0 alone writes checkpoints, metrics, run files
  and the progress bar; the others wait for it at a barrier. tokens_seen and the loss are summed over
  ranks, so metrics, checkpoints and the schedule are global: a checkpoint written by 2 processes with
  accumulation 1 resumes on 1 process with accumulation 2 at the same step (and the reverse), the memory
  per process unchanged.
- Decisions that could differ between ranks are agreed on after each step by a MAX all-reduce: a stop
  signal (so all stop after the same step and write one checkpoint) and the minutes since the last
  checkpoint (save_every_minutes). Evaluation runs on every rank over the whole split with the same
  weights, so its metrics (and early stopping) agree by construction.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmft.errors import ConfigError, EnvironmentProblem, TrainingError

if TYPE_CHECKING:
    import torch

    from llmft.config.schema import DistributedConfig

Say = Callable[[str], None]


@dataclass(frozen=True)
class Place:
    """Where this process is: its global rank among ``world_size``, and its rank on this machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    launcher: str = "none"


def _int(environ: Mapping[str, str], key: str) -> int:
    value = environ[key]
    try:
        return int(value)
    except ValueError:
        raise EnvironmentProblem(
            f"the environment variable {key}={value!r} is not a number",
            fix="launch with torchrun, `accelerate launch`, srun or `llmft train --nproc N`",
        ) from None


def detect(environ: Mapping[str, str] | None = None) -> Place:
    """This process's place from its launcher's environment; one process when no launcher set one."""
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:  # torchrun, accelerate launch, llmft train --nproc
        world = _int(env, "WORLD_SIZE")
        local_world = _int(env, "LOCAL_WORLD_SIZE") if "LOCAL_WORLD_SIZE" in env else world
        local = _int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else _int(env, "RANK")
        return Place(_int(env, "RANK"), world, local, local_world, "torchrun")
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env and _int(env, "SLURM_NTASKS") > 1:
        per_node = env.get("SLURM_NTASKS_PER_NODE", "").split("(")[0]
        world = _int(env, "SLURM_NTASKS")
        local_world = int(per_node) if per_node.isdigit() else world
        local = _int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0
        return Place(_int(env, "SLURM_PROCID"), world, local, local_world, "slurm")
    return Place()


@dataclass(frozen=True)
class Distribution:
    """This process's share of a run and the collectives the loop needs; trivial for one process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    strategy: str = "none"

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, window: list[list[int]]) -> list[list[int]]:
        """This rank's batches of one step's window: every world_size-th, from its rank on."""
        return window[self.rank :: self.world_size] if self.active else window

    def sum_counts(self, *values: int) -> list[int]:
        """``values`` summed over all ranks (exact: int64)."""
        if not self.active:
            return list(values)
        import torch

        total = torch.tensor(values, dtype=torch.int64, device=_device())
        _all_reduce(total, "sum")
        return [int(v) for v in total.tolist()]

    def sum_tensor(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` summed over all ranks (a new tensor; the step's loss, a squared gradient norm)."""
        if not self.active:
            return value
        total = value.detach().to(_device(), copy=True)  # the backend's device (CPU-offloaded shards)
        _all_reduce(total, "sum")
        return total.to(value.device)

    def max_value(self, value: float) -> float:
        """The largest ``value`` of all ranks (a flag or a clock all ranks must agree on)."""
        if not self.active:
            return value
        import torch

        found = torch.tensor([value], dtype=torch.float64, device=_device())
        _all_reduce(found, "max")
        return float(found.item())

    def reduce_step(self, model: torch.nn.Module, loss: torch.Tensor) -> torch.Tensor:
        """Sum the trainable parameters' gradients and the step's loss over all ranks (one all-reduce)."""
        if not self.active:
            return loss
        import torch

        params = [p for p in model.parameters() if p.requires_grad]
        parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params]
        flat = torch.cat([*parts, loss.detach().reshape(1).float()])
        _all_reduce(flat, "sum")
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).to(p.dtype)
            offset += n
        return flat[-1].to(loss.dtype)

    def broadcast_trainable(self, model: torch.nn.Module) -> None:
        """Rank 0's trainable weights to every rank: all start from the same adapter initialisation."""
        if not self.active:
            return
        import torch
        import torch.distributed as dist

        with torch.no_grad(), _collective("the broadcast of the initial weights"):
            for p in model.parameters():
                if p.requires_grad:
                    dist.broadcast(p.data, src=0)

    def gather(self, value: bytes) -> list[bytes] | None:
        """Every rank's ``value`` on rank 0, by rank (None on the others)."""
        if not self.active:
            return [value]
        import torch.distributed as dist

        found: list[bytes] | None = [b""] * self.world_size if self.is_main else None
        with _collective("the gathering of every rank's random state"):
            dist.gather_object(value, found, dst=0)
        return found

    def seed_training(self, seed: int) -> None:
        """Seed the random stream training draws from (dropout masks) once everything is set up: rank r
        gets ``seed + r``, so ranks do not mask their batches alike, and the stream does not depend on what
        the set-up drew before (a tokenization cache hit or miss). Checkpoints save each rank's state
        (rng-rankN.pt), so a resume continues every stream."""
        import torch

        torch.manual_seed(seed + self.rank)

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            with _collective("a wait for rank 0"):
                dist.barrier()

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (writes a cache, creates a folder); the others then run it too."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def say(self, say: Say) -> Say:
        """``say`` for this rank. Rank 0 says the run's lines; the others run the same steps on the same
        data, so their lines would repeat rank 0's one for one: a rank >= 1 says only its warnings
        (``warning: ...``), prefixed with its rank. Its errors reach the CLI's error printer, rank named."""
        if self.is_main:
            return say

        def own_warnings_only(text: str) -> None:
            if text.startswith("warning"):
                say(f"[rank {self.rank}] {text}")

        return own_warnings_only

    def close(self) -> None:
        if self.active:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _device() -> torch.device:
    from accelerate import PartialState

    return PartialState().device


@contextmanager
def _collective(what: str) -> Iterator[None]:
    """A collective whose peer died (killed, or failed with its own message) as a typed error, not a gloo
    or nccl traceback: the launcher names the rank that failed first."""
    try:
        yield
    except RuntimeError as err:  # DistBackendError, gloo's "Connection reset by peer", a timeout
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrainingError(
            f"lost contact with the other processes during {what} ({first[:200]})",
            fix="the rank that failed first says why (its message, and the launcher's summary); a rank that "
            "waited longer than training.distributed.timeout_minutes also ends this way",
        ) from None


def _all_reduce(tensor: torch.Tensor, op: str) -> None:
    import torch.distributed as dist

    with _collective(f"an all-reduce ({op})"):
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)


def backend_for(choice: str, cuda: bool) -> str:
    """`auto`: nccl on GPUs, gloo on CPU; nccl without a GPU is refused."""
    if choice == "auto":
        return "nccl" if cuda else "gloo"
    if choice == "nccl" and not cuda:
        raise EnvironmentProblem(
            "training.distributed.backend: nccl needs GPUs and this machine has none",
            fix="use `backend: auto` (gloo on CPU) or `backend: gloo`",
        )
    return choice


def start(cfg: DistributedConfig, say: Say, environ: Mapping[str, str] | None = None) -> Distribution:
    """Join the run's process group when launched as one of several processes; else one process."""
    place = detect(environ)
    _refuse_launcher_engines(os.environ if environ is None else environ)
    import torch

    from llmft.train.distributed.strategies import check_strategy

    cuda = torch.cuda.is_available()
    strategy = check_strategy(cfg, place.world_size, cuda)
    if place.world_size == 1:
        if cfg.strategy in ("fsdp", "deepspeed"):
            say(f"strategy {cfg.strategy} with one process: nothing to shard, it trains as one process")
        return Distribution()
    backend = backend_for(cfg.backend, cuda)
    _export_place(place)
    _die_with_parent()
    from datetime import timedelta

    from accelerate import PartialState

    try:
        PartialState(cpu=not cuda, backend=backend, timeout=timedelta(minutes=cfg.timeout_minutes))
    except ValueError as err:  # accelerate: MASTER_ADDR missing on several machines, ...
        raise ConfigError(
            f"cannot join the process group: {err}",
            fix="launch with `llmft train --nproc N` (or torchrun); under srun export MASTER_ADDR and "
            "MASTER_PORT (docs/DISTRIBUTED.md)",
        ) from None
    dist = Distribution(place.rank, place.world_size, place.local_rank, place.local_world_size, strategy)
    if dist.is_main:
        say(
            f"distributed: {place.world_size} processes ({place.local_world_size} on this machine, "
            f"launched by {place.launcher}), strategy {strategy}, backend {backend}"
        )
    return dist


# accelerate launch flags that would make accelerate shard the model behind llmft's back.
_LAUNCHER_ENGINES = {"ACCELERATE_USE_DEEPSPEED": "deepspeed", "ACCELERATE_USE_FSDP": "fsdp"}


def _refuse_launcher_engines(environ: Mapping[str, str]) -> None:
    """`accelerate launch --use_deepspeed` / `--use_fsdp` configure accelerate's engines, which llmft's loop
    does not hand the model to: the strategy is the run config's, so the flag is refused, not ignored."""
    for variable, strategy in _LAUNCHER_ENGINES.items():
        if environ.get(variable, "").lower() in ("true", "1", "yes"):
            raise ConfigError(
                f"launched with accelerate's {strategy} ({variable}=true), which llmft does not use",
                fix=f"launch without --use_{strategy} and set training.distributed.strategy: {strategy} in "
                "the run config (docs/DISTRIBUTED.md)",
            )


def _die_with_parent() -> None:
    """Linux: end this worker when its launcher dies (SIGKILLed launchers cannot stop their workers, which
    torchrun starts in sessions of their own): no process is left behind training alone."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the launcher died before the call
        os._exit(128 + signal.SIGKILL)


def _export_place(place: Place) -> None:
    """SLURM's variables as torch's (RANK, WORLD_SIZE, ...), which accelerate and torch read."""
    os.environ.setdefault("RANK", str(place.rank))
    os.environ.setdefault("WORLD_SIZE", str(place.world_size))
    os.environ.setdefault("LOCAL_RANK", str(place.local_rank))
    os.environ.setdefault("LOCAL_WORLD_SIZE", str(place.local_world_size))
    if place.launcher == "slurm" and "MASTER_ADDR" not in os.environ:
        raise ConfigError(
            "launched by srun, but MASTER_ADDR is not set: the processes cannot find rank 0",
            fix="export MASTER_ADDR=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n1) and "
            "MASTER_PORT=29500 in the batch script (docs/DISTRIBUTED.md has one)",
        )


def threads_per_process(requested: int | None, local_world_size: int) -> int:
    """CPU threads for torch in each process: the setting, else this machine's cores divided among its
    processes (torchrun sets OMP_NUM_THREADS=1, which would leave cores idle)."""
    if requested:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, local_world_size))


def global_batch(batch_size: int, world_size: int, accumulation: int) -> int:
    return batch_size * world_size * accumulation
