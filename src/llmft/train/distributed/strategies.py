"""Which multi-process strategy a run uses, and whether this machine can honour it.

``ddp`` is llmft's data-parallel loop (group.py): every process holds the whole model. ``fsdp`` shards
weights, gradients and optimizer state with torch's FSDP2 ``fully_shard`` (sharding.py); ``deepspeed``
runs DeepSpeed's ZeRO engine (stages 1-3, offload) under llmft's loop (zero.py), with the DeepSpeed config
given in the run config and its `auto` values filled from the training section
(config/distributed.py ``deepspeed_config``, also what ``llmft validate`` checks).
Both run on GPUs (nccl) and CPUs (gloo), which is how they are tested here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.errors import EnvironmentProblem

if TYPE_CHECKING:
    from llmft.config.schema import DistributedConfig


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
