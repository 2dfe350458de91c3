"""Which multi-process strategy a run uses, and how the run config translates to the engines' configs.

``ddp`` is llmft's data-parallel loop (distributed.py): every process holds the whole model. ``fsdp`` shards
weights, gradients and optimizer state with torch's FSDP2 ``fully_shard`` (sharding.py); it runs on GPUs
(nccl) and on CPUs (gloo), which is how it is tested here. ``deepspeed`` (ZeRO) is validated and its config
translated to accelerate's plugin (``deepspeed_config``, unit-tested), but llmft's loop does not train with
it yet: its engine owns the backward, the step and the checkpoints, which llmft's loop does itself (and
ZeRO-3's sharding is what ``fsdp`` gives). A run that asks for it is refused with that said, rather than
trained some other way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.config.distributed import read_deepspeed
from llmft.errors import ConfigError, EnvironmentProblem

if TYPE_CHECKING:
    from llmft.config.schema import DistributedConfig, TrainingConfig

GPU_CHECK = "benchmarks/distributed_gpu_check.sh"


def check_strategy(cfg: DistributedConfig, world_size: int, cuda: bool) -> str:
    """The strategy this run trains with (`none` for one process, `ddp`, `fsdp`), or a clear refusal."""
    if cfg.strategy == "deepspeed":
        need = "" if cuda else "; DeepSpeed's ZeRO also needs GPUs (this machine has none)"
        raise EnvironmentProblem(
            "training.distributed.strategy: deepspeed: DeepSpeed ZeRO is not supported by llmft's training "
            f"loop yet{need}",
            fix="use `strategy: fsdp` (FSDP2 shards weights, gradients and optimizer state as ZeRO-3 does) "
            f"or `ddp`; the DeepSpeed config translation is ready and {GPU_CHECK} checks the engines on a "
            "GPU machine",
        )
    if world_size == 1:
        return "none"
    if cfg.strategy == "fsdp":
        if cfg.fsdp.cpu_offload and not cuda:
            raise EnvironmentProblem(
                "training.distributed.fsdp.cpu_offload moves shards from GPU memory to CPU memory, and this "
                "machine has no GPU: its shards are in CPU memory already",
                fix="set training.distributed.fsdp.cpu_offload: false",
            )
        return "fsdp"
    return "ddp"


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
            if ours is not None:
                ds[key] = ours
        elif given != ours:
            raise ConfigError(
                f"training.distributed.deepspeed: {key} is {given!r} but training.{field} is {ours!r}",
                fix=f'set {key} to "auto" (it then follows training.{field}) or make them equal',
            )
    ds.pop("train_batch_size", None)  # DeepSpeed derives it from the micro batch, accumulation and ranks
    for kind in ("bf16", "fp16"):
        section = ds.get(kind)
        if isinstance(section, dict) and section.get("enabled", "auto") == "auto":
            ds[kind] = {**section, "enabled": precision == kind}
    return ds


def zero_stage(ds: dict[str, object]) -> int:
    zero = ds.get("zero_optimization")
    return int(zero.get("stage", 0)) if isinstance(zero, dict) else 0
