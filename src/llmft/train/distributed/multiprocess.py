"""What a run does differently as one of several processes: the few pipeline steps that need a rank.

Joining the process group (group.py), the run directory (rank 0 creates or clears it), threads per
process, and which config changes a resume on another number of processes may make: the data position of
a checkpoint counts in windows of gradient_accumulation_steps × processes batches, so a resume may change
the number of processes when the accumulation changes with it and the window stays the same.
"""

from __future__ import annotations

from pathlib import Path

from llmft.config.schema import TrainingConfig
from llmft.errors import CheckpointError
from llmft.run_dir import read_checkpoint_config, read_state
from llmft.train.distributed.group import Distribution, Say, start, threads_per_process


def join(training: TrainingConfig, say: Say) -> Distribution:
    """This process's place in the run (one process unless a launcher started several)."""
    return start(training.distributed, say)


def output_dir(
    path: str, dist: Distribution, *, overwrite: bool, resume: bool, command: str | None = None
) -> Path:
    """The run dir at ``path`` (output_dir): rank 0 creates (or clears) it; the others only use it (they
    run after rank 0). ``command`` goes into the hints of a refusal."""
    from llmft.train import artifacts

    if dist.is_main:
        return artifacts.prepare_output_dir(path, overwrite=overwrite, resume=resume, command=command)
    return Path(path)


def threads(training: TrainingConfig, dist: Distribution, say: Say) -> int | None:
    """CPU threads for torch: the setting; with several processes on this machine, its cores divided
    among them (said once), since torchrun's OMP_NUM_THREADS=1 would leave cores idle."""
    if not dist.active:
        return training.num_threads
    count = threads_per_process(training.num_threads, dist.local_world_size)
    if dist.is_main:
        how = "training.num_threads" if training.num_threads else "cores ÷ processes on this machine"
        say(f"threads: {count} per process ({how})")
    return count


def _saved(folder: Path) -> tuple[int, int, int]:
    """(processes, batch_size, gradient_accumulation_steps) a checkpoint was written with."""
    import yaml

    state = read_state(folder)
    training = (yaml.safe_load(read_checkpoint_config(folder)) or {}).get("training")
    training = training if isinstance(training, dict) else {}
    return (
        int(state.get("world_size", 1)),  # type: ignore[call-overload]
        int(training.get("batch_size", 8)),
        int(training.get("gradient_accumulation_steps", 1)),
    )


def resume_world_changes(
    folder: Path, training: TrainingConfig, world_size: int, say: Say
) -> tuple[str, ...]:
    """Config keys a resume on ``world_size`` processes may change: ``gradient_accumulation_steps`` when
    the number of processes changed and the batches per step (accumulation × processes) stay the same.
    Refuses a resume that changes the global batch, with the accumulation that would keep it."""
    old_world, old_batch, old_accumulation = _saved(folder)
    if old_world == world_size:
        return ()
    batches = old_world * old_accumulation  # batches per optimizer step: what the data position counts in
    accumulation = training.gradient_accumulation_steps
    if old_batch == training.batch_size and accumulation * world_size == batches:
        say(
            f"resume: {old_world} → {world_size} processes, gradient_accumulation_steps {old_accumulation} → "
            f"{accumulation}: the same global batch of {batches * old_batch} rows, so the same steps"
        )
        return ("training.gradient_accumulation_steps",)
    if batches % world_size or old_batch != training.batch_size:
        fix = (
            f"keep training.batch_size={old_batch} and resume on a number of processes that divides "
            f"{batches}, with gradient_accumulation_steps = {batches} ÷ processes"
        )
    else:
        fix = f"set training.gradient_accumulation_steps={batches // world_size} (and keep batch_size)"
    raise CheckpointError(
        f"the checkpoint was written by {old_world} process(es) with batch_size {old_batch} and "
        f"gradient_accumulation_steps {old_accumulation} ({batches} batches per step); "
        f"{world_size} process(es) with batch_size {training.batch_size} and gradient_accumulation_steps "
        f"{accumulation} would train on other batches from its data position on",
        where=str(folder),
        fix=fix,
    )
