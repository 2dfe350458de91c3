"""Checks of training.distributed: the DeepSpeed config must parse (file and line), and FSDP is refused
with the settings it cannot honour (one table, ``FSDP_CANNOT``), before a run starts.

DeepSpeed is validated so that its config is ready, and ``llmft validate`` says up front that llmft's loop
refuses it for now (train/strategies.py says why).
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
        return dict(value)
    path = Path(value)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"{PATH}: cannot read {path}: {err.strerror or err}",
            fix="point it at a DeepSpeed JSON file (configs/deepspeed_zero2.json is one)",
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
    return data


# Settings FSDP (train/sharding.py) does not support: (config path, does the config set it, why, fix).
FSDP_CANNOT: tuple[tuple[str, Callable[[RunConfig], bool], str, str], ...] = (
    (
        "training.optimizer",
        lambda c: c.training.optimizer not in ("adamw", "sgd"),
        "Adafactor's factored moments and the 8-bit AdamW's blocks need whole weights, not FSDP's shards",
        "use `optimizer: adamw` (or sgd) with FSDP, or `strategy: ddp`",
    ),
    (
        "training.compile",
        lambda c: c.training.compile,
        "torch.compile of a model sharded by llmft's FSDP set-up is not supported yet",
        "set training.compile: false, or use `strategy: ddp`",
    ),
    (
        "training.mixed_precision",
        lambda c: c.training.mixed_precision == "fp16",
        "fp16's loss scaler would need FSDP's sharded gradient scaler",
        "use bf16 (or `auto`) with FSDP",
    ),
    (
        "evaluation.generate.when",
        lambda c: c.evaluation.generate is not None and c.evaluation.generate.when == "every_eval",
        "generation during training would need the whole model on one process at every evaluation",
        "use `when: end` (the final model is put together once and generates on rank 0)",
    ),
)


def check_distributed(config: RunConfig) -> list[Problem]:
    """The DeepSpeed file parses; FSDP's unsupported settings are errors; DeepSpeed is announced as refused
    at run time."""
    cfg = config.training.distributed
    problems: list[Problem] = []
    if cfg.deepspeed is not None:
        try:
            read_deepspeed(cfg.deepspeed)
        except ConfigError as err:
            problems.append(Problem(PATH, err.message.removeprefix(f"{PATH}: "), fix=err.fix))
    if cfg.strategy == "fsdp":
        problems += [
            Problem(path, f"{why}, so it cannot be used with `training.distributed.strategy: fsdp`", fix=fix)
            for path, applies, why, fix in FSDP_CANNOT
            if applies(config)
        ]
    if cfg.strategy == "deepspeed":
        problems.append(
            Problem(
                "training.distributed.strategy",
                f"`{cfg.strategy}` is validated but llmft's training loop does not train with it yet: "
                "`llmft train` will refuse it",
                fix="use `strategy: ddp` (or `auto`) to train on several processes now; "
                "benchmarks/distributed_gpu_check.sh checks the engines on a GPU machine",
                severity="warning",
            )
        )
    return problems
