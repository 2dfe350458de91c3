"""Checks of training.distributed: the DeepSpeed config must parse (file and line) and leave the optimizer
and schedule to llmft, and the strategies that shard the model's state (FSDP, DeepSpeed) are refused with
the settings they cannot honour (one table, ``SHARDED_CANNOT``), before a run starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from llmft.config.objectives import ROWS
from llmft.config.schema import RunConfig, TrainingConfig
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


# DeepSpeed's value when the training setting is unset (max_grad_norm null: no clipping; DeepSpeed's own
# default would clip at 1.0).
_UNSET: dict[str, object] = {"gradient_clipping": 0.0}

# DeepSpeed key → the training setting an `auto` value (or a missing key) takes.
_FROM_TRAINING = {
    "train_micro_batch_size_per_gpu": "batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "gradient_clipping": "max_grad_norm",
}


def deepspeed_config(
    value: str | dict[str, object], training: TrainingConfig, precision: str | None
) -> dict[str, object]:
    """The DeepSpeed config with `auto` values filled from the training section; a value that disagrees
    with the training section is refused (two settings saying different things). ``precision`` is the
    run's resolved mixed precision; None when not known yet (`auto` at validation, decided by the device):
    the `bf16`/`fp16` sections are then left as they are."""
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
        if not isinstance(section, dict) or precision is None:
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


BOTH = ("fsdp", "deepspeed")

# Settings the sharded strategies (FSDP: train/distributed/sharding.py, DeepSpeed: train/distributed/zero.py)
# do not support:
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
        lambda c: c.training.objective != "auto" and ROWS[c.training.objective].preference,
        "a preference objective's reference model and pair batches are not sharded",
        "use `strategy: ddp` (or `auto`) for preference training on several processes",
    ),
    (
        "training.rl",
        BOTH,
        lambda c: c.training.objective != "auto" and ROWS[c.training.objective].rollouts,
        "online RL (grpo, rloo) samples its completions with the whole policy, which sharding splits",
        "train in one process (the rollout loop runs on one process for now)",
    ),
    (
        "training.nan_policy",
        ("deepspeed",),
        lambda c: c.training.nan_policy == "skip",
        "skipping a step would leave DeepSpeed's accumulated gradients behind",
        "use `nan_policy: error` (the run stops at the last good checkpoint), or `strategy: fsdp`",
    ),
)


def _cannot(why: str, strategy: str) -> str:
    return f"{why}, so it cannot be used with `training.distributed.strategy: {strategy}`"


def sharded_refusal(path: str, strategy: str, found: str) -> ConfigError:
    """``SHARDED_CANNOT``'s refusal of ``path`` under ``strategy`` for a value the run finds only when it
    starts (``found``: an objective inferred from the data), worded as validation words it."""
    why, fix = next(row[3:] for row in SHARDED_CANNOT if row[0] == path and strategy in row[1])
    return ConfigError(f"{path} is {found}: {_cannot(why, strategy)}", fix=fix)


def check_distributed(config: RunConfig) -> list[Problem]:
    """The DeepSpeed config parses, leaves the optimizer to llmft and agrees with the training section; a
    sharded strategy's unsupported settings are errors."""
    cfg = config.training.distributed
    problems = [
        Problem(path, _cannot(why, cfg.strategy), fix=fix)
        for path, strategies, applies, why, fix in SHARDED_CANNOT
        if cfg.strategy in strategies and applies(config)
    ]
    if cfg.deepspeed is None:
        return problems
    training = config.training
    known = None if training.mixed_precision == "auto" else training.mixed_precision
    try:  # read once; the translation the run makes, with the precision when the config decides it
        ds = deepspeed_config(cfg.deepspeed, training, known)
    except ConfigError as err:
        return [*problems, Problem(PATH, err.message.removeprefix(f"{PATH}: "), fix=err.fix)]
    stage = zero_stage(ds)
    if cfg.strategy == "deepspeed" and stage not in (1, 2, 3):
        problems.append(
            Problem(
                PATH,
                f"zero_optimization.stage is {stage}: llmft trains DeepSpeed with ZeRO stage 1, 2 or 3",
                fix='set "zero_optimization": {"stage": 2} (or 1, or 3), or use `strategy: ddp`',
            )
        )
    return problems
