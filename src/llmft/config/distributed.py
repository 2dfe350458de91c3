"""Checks of training.distributed: the DeepSpeed config must parse (file and line) and leave the optimizer
and schedule to llmft, and the strategies that shard the model's state (FSDP, DeepSpeed) are refused with
the settings they cannot honour (one table, ``SHARDED_CANNOT``), before a run starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from llmft.config.schema import RunConfig
from llmft.errors import ConfigError, Problem

PATH = "training.distributed.deepspeed"


def read_deepspeed(value: str | dict[str, object]) -> dict[str, object]:
    """The DeepSpeed config as a mapping: the mapping given, or the JSON file parsed. A file that cannot be
    read or parsed raises a ConfigError naming the file and line."""
    if isinstance(value, dict):
        return _own_sections_refused(dict(value))
    path = Path(value)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"{PATH}: cannot read {path}: {err.strerror or err}",
            fix="point it at a DeepSpeed JSON file (configs/deepspeed/zero2_offload.json is one)",
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{PATH}: {path}:{err.lineno}:{err.colno} is not valid JSON: {err.msg}",
            fix=f"fix the JSON at {path}, line {err.lineno}",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{PATH}: {path} holds a JSON {type(data).__name__}, not an object",
            fix='write a DeepSpeed config object, e.g. {"zero_optimization": {"stage": 2}}',
        )
    return _own_sections_refused(data)


# DeepSpeed config sections that llmft's training section sets instead.
_OWNED_BY_TRAINING = {"optimizer": "training.optimizer", "scheduler": "training.lr_scheduler"}


def _own_sections_refused(ds: dict[str, object]) -> dict[str, object]:
    for section, ours in _OWNED_BY_TRAINING.items():
        if section in ds:
            raise ConfigError(
                f"{PATH}: its `{section}` section would replace {ours}, which llmft's loop steps",
                fix=f"delete `{section}` from the DeepSpeed config and set {ours} instead",
            )
    return ds


def zero_stage(ds: dict[str, object]) -> int:
    """The ZeRO stage of a DeepSpeed config (0 when it names none)."""
    zero = ds.get("zero_optimization")
    return int(zero.get("stage", 0)) if isinstance(zero, dict) else 0  # type: ignore[arg-type]


BOTH = ("fsdp", "deepspeed")

# Settings the sharded strategies (FSDP: train/sharding.py, DeepSpeed: train/zero.py) do not support:
# (config path, the strategies it concerns, does the config set it, why, fix).
SHARDED_CANNOT: tuple[tuple[str, tuple[str, ...], Callable[[RunConfig], bool], str, str], ...] = (
    (
        "training.optimizer",
        BOTH,
        lambda c: c.training.optimizer not in ("adamw", "sgd"),
        "Adafactor's factored moments and the 8-bit AdamW's blocks need whole weights, not shards",
        "use `optimizer: adamw` (or sgd), or `strategy: ddp`",
    ),
    (
        "training.compile",
        BOTH,
        lambda c: c.training.compile,
        "torch.compile of a model whose state is sharded is not supported by llmft yet",
        "set training.compile: false, or use `strategy: ddp`",
    ),
    (
        "training.mixed_precision",
        BOTH,
        lambda c: c.training.mixed_precision == "fp16",
        "fp16's loss scaler would need a sharded gradient scaler",
        "use bf16 (or `auto`)",
    ),
    (
        "model.quantization",
        BOTH,
        lambda c: c.model.resolved_quantization() is not None,
        "a 4/8-bit base (qlora, model.quantization) is bitsandbytes' packed weights, which cannot be sharded",
        "use `strategy: ddp` for a quantized base (each process holds it whole, in 4 bits)",
    ),
    (
        "evaluation.generate.when",
        BOTH,
        lambda c: c.evaluation.generate is not None and c.evaluation.generate.when == "every_eval",
        "generation during training would need the whole model on one process at every evaluation",
        "use `when: end` (the final model is put together once and generates on rank 0)",
    ),
    (
        "training.objective",
        BOTH,
        lambda c: c.training.objective not in ("auto", "sft"),
        "a preference objective's reference model and pair batches are not sharded",
        "use `strategy: ddp` (or `auto`) for preference training on several processes",
    ),
    (
        "training.nan_policy",
        ("deepspeed",),
        lambda c: c.training.nan_policy == "skip",
        "skipping a step would leave DeepSpeed's accumulated gradients behind",
        "use `nan_policy: error` (the run stops at the last good checkpoint), or `strategy: fsdp`",
    ),
)


def check_distributed(config: RunConfig) -> list[Problem]:
    """The DeepSpeed file parses and leaves the optimizer to llmft; a sharded strategy's unsupported
    settings are errors."""
    cfg = config.training.distributed
    problems: list[Problem] = []
    if cfg.deepspeed is not None:
        try:
            read_deepspeed(cfg.deepspeed)
        except ConfigError as err:
            problems.append(Problem(PATH, err.message.removeprefix(f"{PATH}: "), fix=err.fix))
    problems += [
        Problem(
            path, f"{why}, so it cannot be used with `training.distributed.strategy: {cfg.strategy}`", fix=fix
        )
        for path, strategies, applies, why, fix in SHARDED_CANNOT
        if cfg.strategy in strategies and applies(config)
    ]
    if cfg.strategy == "deepspeed" and cfg.deepspeed is not None and not problems:
        stage = zero_stage(read_deepspeed(cfg.deepspeed))
        if stage not in (1, 2, 3):
            problems.append(
                Problem(
                    PATH,
                    f"zero_optimization.stage is {stage}: llmft trains DeepSpeed with ZeRO stage 1, 2 or 3",
                    fix='set "zero_optimization": {"stage": 2} (or 1, or 3), or use `strategy: ddp`',
                )
            )
    return problems
