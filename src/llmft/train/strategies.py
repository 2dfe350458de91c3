"""Which multi-process strategy a run uses, and what the strategies that shard the model would need.

``ddp`` is llmft's data-parallel loop (distributed.py). ``fsdp`` and ``deepspeed`` shard weights, gradients
and optimizer state; their translation from the run config to accelerate's plugins lives here
(``fsdp_plugin_kwargs``, ``deepspeed_config``) and is unit-tested, but llmft's loop does not train with
them yet: the selective LM head bypasses the root module's forward (whose hooks gather FSDP's shards),
checkpoints would have to gather sharded parameters and optimizer state on every rank, and neither can be
tested on this project's CPU machines (accelerate's multi-CPU mode excludes FSDP, DeepSpeed's ZeRO needs
GPUs). A run that asks for them is refused with that said, rather than trained some other way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmft.config.distributed import read_deepspeed
from llmft.errors import ConfigError, EnvironmentProblem

if TYPE_CHECKING:
    from llmft.config.schema import DistributedConfig, FsdpConfig, TrainingConfig

GPU_CHECK = "benchmarks/distributed_gpu_check.sh"


def check_strategy(cfg: DistributedConfig, world_size: int, cuda: bool) -> str:
    """The strategy this run trains with (`none` for one process, `ddp`), or a clear refusal."""
    if cfg.strategy in ("fsdp", "deepspeed"):
        what = "FSDP" if cfg.strategy == "fsdp" else "DeepSpeed ZeRO"
        need = "" if cuda else " and needs GPUs (this machine has none)"
        raise EnvironmentProblem(
            f"training.distributed.strategy: {cfg.strategy}: {what} is not supported by llmft's training "
            f"loop yet{need}",
            fix="use `strategy: ddp` (or `auto`), which every process trains with the whole model; the "
            f"config translation is ready and {GPU_CHECK} checks the engines on a GPU machine",
        )
    return "ddp" if world_size > 1 else "none"


def fsdp_plugin_kwargs(cfg: FsdpConfig, layer_classes: list[str]) -> dict[str, object]:
    """accelerate's ``FullyShardedDataParallelPlugin`` arguments for FSDP2 (``fully_shard``).

    ``layer_classes``: the model's ``_no_split_modules`` when the config names none; each such layer is
    sharded on its own (transformer-based wrapping), the rest with the root module.
    """
    return {
        "fsdp_version": 2,
        "reshard_after_forward": cfg.reshard_after_forward,
        "cpu_offload": cfg.cpu_offload,
        "auto_wrap_policy": "transformer_based_wrap",
        "transformer_cls_names_to_wrap": list(cfg.layer_classes or layer_classes),
        "state_dict_type": "FULL_STATE_DICT",
        "cpu_ram_efficient_loading": False,
    }


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
