"""Which multi-process strategy a run uses, and how the run config translates to DeepSpeed's config.

``ddp`` is llmft's data-parallel loop (distributed.py): every process holds the whole model. ``fsdp`` shards
weights, gradients and optimizer state with torch's FSDP2 ``fully_shard`` (sharding.py); ``deepspeed``
runs DeepSpeed's ZeRO engine (stages 1-3, offload) under llmft's loop (zero.py), with the DeepSpeed config
given in the run config and its `auto` values filled from the training section (``deepspeed_config``).
Both run on GPUs (nccl) and CPUs (gloo), which is how they are tested here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.config.distributed import read_deepspeed
from llmft.errors import ConfigError, EnvironmentProblem

if TYPE_CHECKING:
    from llmft.config.schema import DistributedConfig, TrainingConfig


def check_strategy(cfg: DistributedConfig, world_size: int, cuda: bool) -> str:
    """The strategy this run trains with (`none` for one process, `ddp`, `fsdp`, `deepspeed`), or a clear
    refusal of a setting this machine cannot honour."""
    if world_size == 1:
        return "none"
    if cfg.strategy == "fsdp" and cfg.fsdp.cpu_offload and not cuda:
        raise EnvironmentProblem(
            "training.distributed.fsdp.cpu_offload moves shards from GPU memory to CPU memory, and this "
            "machine has no GPU: its shards are in CPU memory already",
            fix="set training.distributed.fsdp.cpu_offload: false",
        )
    return "ddp" if cfg.strategy == "auto" else cfg.strategy


# DeepSpeed's value when the training setting is unset (max_grad_norm null: no clipping; DeepSpeed's own
# default would clip at 1.0).
_UNSET: dict[str, object] = {"gradient_clipping": 0.0}

# DeepSpeed key → the training setting an `auto` value (or a missing key) takes.
_FROM_TRAINING = {
    "train_micro_batch_size_per_gpu": "batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "gradient_clipping": "max_grad_norm",
}


def deepspeed_config(value: str | dict[str, object], training: TrainingConfig, precision: str) -> dict:
    """The DeepSpeed config with `auto` values filled from the training section; a value that disagrees
    with the training section is refused (two settings saying different things)."""
    ds = read_deepspeed(value)
    for key, field in _FROM_TRAINING.items():
        ours = getattr(training, field)
        given = ds.get(key, "auto")
        if given == "auto":
            ds[key] = ours if ours is not None else _UNSET[key]
        elif given != ours:
            raise ConfigError(
                f"training.distributed.deepspeed: {key} is {given!r} but training.{field} is {ours!r}",
                fix=f'set {key} to "auto" (it then follows training.{field}) or make them equal',
            )
    if ds.pop("train_batch_size", "auto") != "auto":
        raise ConfigError(
            "training.distributed.deepspeed: train_batch_size is set, but llmft's global batch is "
            "training.batch_size × gradient_accumulation_steps × processes",
            fix='delete train_batch_size (or set it to "auto"): DeepSpeed derives it',
        )
    for kind in ("bf16", "fp16"):
        section = ds.get(kind)
        if not isinstance(section, dict):
            continue
        given = section.get("enabled", "auto")
        if given == "auto":
            ds[kind] = {**section, "enabled": precision == kind}
        elif bool(given) != (precision == kind):
            raise ConfigError(
                f"training.distributed.deepspeed: {kind}.enabled is {given!r} but the run's precision is "
                f"{precision!r} (training.mixed_precision)",
                fix=f'set {kind}.enabled to "auto" (it then follows training.mixed_precision)',
            )
    return ds
