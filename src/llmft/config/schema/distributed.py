"""`training.distributed`: several processes or machines (DDP, FSDP2, DeepSpeed)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llmft.config.schema.base import PositiveFloat, RuleError, Section


class FsdpConfig(Section):
    """How FSDP2 (torch's ``fully_shard``) shards the model across the processes; see
    train/distributed/sharding.py."""

    reshard_after_forward: bool = Field(
        True,
        description="Free each layer's gathered weights after its forward (ZeRO-3 style, least memory); "
        "false keeps them until the backward (ZeRO-2 style, less communication).",
    )
    cpu_offload: bool = Field(
        False, description="Keep sharded weights and optimizer state in CPU memory (GPU runs only)."
    )
    layer_classes: list[str] | None = Field(
        None,
        description="Module classes sharded one by one (e.g. `LlamaDecoderLayer`); default: the model's "
        "own `_no_split_modules`.",
    )


class DistributedConfig(Section):
    """More than one process: started by `llmft train --nproc N`, torchrun, accelerate launch or srun."""

    strategy: Literal["auto", "ddp", "fsdp", "deepspeed"] = Field(
        "auto",
        description="`auto`: DDP when more than one process (every rank holds the model, gradients are "
        "summed); `fsdp`: FSDP2 shards weights, gradients and optimizer state (GPUs or CPUs); `deepspeed`: "
        "DeepSpeed ZeRO stage 1-3 (GPUs or CPUs; `pip install llmft[deepspeed]`).",
    )
    backend: Literal["auto", "nccl", "gloo"] = Field(
        "auto", description="Collective backend; `auto`: nccl on GPUs, gloo on CPU."
    )
    timeout_minutes: PositiveFloat = Field(
        30, description="How long a rank waits for the others in a collective before the run fails."
    )
    fsdp: FsdpConfig = Field(default_factory=FsdpConfig, description="FSDP settings (strategy `fsdp`).")
    deepspeed: str | dict[str, object] | None = Field(
        None,
        description="DeepSpeed config: a JSON file or a mapping (strategy `deepspeed`); `auto` values are "
        "filled from the training section.",
    )

    @model_validator(mode="after")
    def _deepspeed_needs_strategy(self) -> DistributedConfig:
        if self.deepspeed is not None and self.strategy != "deepspeed":
            raise RuleError(
                f"deepspeed is set but strategy is `{self.strategy}`, so it would be ignored",
                fix="set `strategy: deepspeed`, or delete `deepspeed`",
            )
        if self.strategy == "deepspeed" and self.deepspeed is None:
            raise RuleError(
                "strategy `deepspeed` needs a DeepSpeed config",
                fix="add e.g. `deepspeed: configs/deepspeed/zero2_offload.json` (see configs/)",
            )
        return self
