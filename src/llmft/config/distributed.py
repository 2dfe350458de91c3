"""Checks of training.distributed that read files: the DeepSpeed config must parse (file and line).

The engines that shard the model (FSDP, DeepSpeed) are validated so that their configs are ready, and
``llmft validate`` says up front that llmft's loop refuses them for now (train/strategies.py says why).
"""

from __future__ import annotations

import json
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


def check_distributed(config: RunConfig) -> list[Problem]:
    """The DeepSpeed file parses; a sharding strategy is announced as refused at run time."""
    cfg = config.training.distributed
    problems: list[Problem] = []
    if cfg.deepspeed is not None:
        try:
            read_deepspeed(cfg.deepspeed)
        except ConfigError as err:
            problems.append(Problem(PATH, err.message.removeprefix(f"{PATH}: "), fix=err.fix))
    if cfg.strategy in ("fsdp", "deepspeed"):
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
