"""The parts a run trains with, built once from the config sections (``TrainSections``): accelerator,
batches (padded or packed), optimizer and schedule. The trainer (trainer.py) owns them; the loop (loop.py)
uses them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch

from llmft.config.distributed import sharded_refusal
from llmft.config.objectives import ROWS
from llmft.config.schema import TrainingConfig
from llmft.data.build import EncodedData
from llmft.data.collate import PackedCollator, PadCollator, pack_examples
from llmft.errors import EnvironmentProblem, ModelError
from llmft.train.batches import BatchSource, FixedBatches, total_steps
from llmft.train.distributed.group import Distribution
from llmft.train.loop import LoopHooks, TrainSetup
from llmft.train.loss import PLAIN_HEAD_TYPES, supports_selective_head
from llmft.train.objectives import Context
from llmft.train.objectives.base import Collate, ObjectiveModule
from llmft.train.objectives.registry import build_objective, module_for
from llmft.train.optim import build_optimizer, build_scheduler
from llmft.train.sections import TrainSections

if TYPE_CHECKING:
    from llmft.train.distributed.sharding import Sharded


@dataclass
class Parts:
    """The loop's set-up, plus how evaluation batches are padded and what the user should be told."""

    setup: TrainSetup
    eval_collate: Callable[[list[dict[str, object]]], dict[str, torch.Tensor]]
    notes: list[str]
    precision: str = "fp32"  # what the run computes in (precision_used), for run.json


PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def mixed_precision(cfg: TrainingConfig) -> str:
    """`auto`: bf16 only on a GPU that supports it; fp32 on CPU, where bf16 autocast was measured slower."""
    cuda = torch.cuda.is_available()
    if cfg.mixed_precision == "auto":
        return "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"
    if cfg.mixed_precision == "fp16" and not cuda:
        raise EnvironmentProblem(
            "training.mixed_precision: fp16 needs a GPU", fix="use `auto` or `no` on CPU"
        )
    return cfg.mixed_precision


def precision_used(mixed: str, model: torch.nn.Module) -> str:
    """What training computes in: the autocast dtype (``mixed``, as ``mixed_precision`` resolved it), else the
    trained weights' own dtype, so `auto` on a CPU reads `fp32`, not `auto` or `no`."""
    if mixed in ("bf16", "fp16"):
        return mixed
    dtype = next((p.dtype for p in model.parameters() if p.requires_grad), torch.float32)
    return PRECISION_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def _precision_note(
    cfg: TrainingConfig, mixed: str, model: torch.nn.Module, device: object
) -> tuple[str, str]:
    """The precision used and the line that tells the user, with the setting it came from."""
    used = precision_used(mixed, model)
    autocast = " autocast" if mixed in ("bf16", "fp16") else ""
    where = getattr(device, "type", device)
    return used, f"precision: {used}{autocast} on {where} (training.mixed_precision: {cfg.mixed_precision})"


def _packed(
    model: torch.nn.Module, encoded: EncodedData, collate: PadCollator, max_length: int, notes: list[str]
) -> tuple[list[dict[str, object]], PackedCollator]:
    """Pack the training rows (causal LM on an architecture whose masks honour restarted positions);
    appends a line for the user to ``notes``."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if not supports_selective_head(model):
        raise ModelError(
            f"data.packing is not supported for model type `{model_type}` with this adapter",
            fix=f"set data.packing: false (supported: {', '.join(sorted(PLAIN_HEAD_TYPES))})",
        )
    rows = encoded.examples["train"]
    packed = pack_examples(rows, max_length)
    from llmft.train import packed_attention

    per_document = packed_attention.enable(model, max_length)  # instead of a dense block-diagonal mask
    tokens = sum(len(p["input_ids"]) for p in packed)  # type: ignore[arg-type]
    notes.append(
        f"packing: {len(rows)} rows into {len(packed)} sequences of up to {max_length} tokens "
        f"({tokens / max(1, len(packed) * max_length):.0%} full); attention "
        + ("per document (causal SDPA)" if per_document else "through a block-diagonal mask")
    )
    return packed, PackedCollator(collate.pad_id, max_length, collate.pad_to_multiple_of)


def _packed_sequences(
    model: torch.nn.Module,
    module: ObjectiveModule,
    encoded: EncodedData,
    collate: Collate,
    max_length: int,
    notes: list[str],
) -> Collate:
    """The objective's collator with each batch's sequences packed as documents (data/pair_collate.py):
    one row per batch under per-document attention, else rows of up to the longest sequence or
    tokenization.max_length, whichever is larger, under transformers' block-diagonal mask."""
    from llmft.data.pair_collate import example_length
    from llmft.train import packed_attention

    can_pack = getattr(module, "can_pack", supports_selective_head)
    if not can_pack(model):
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        raise ModelError(
            f"data.packing is not supported for objective {encoded.objective} on model type "
            f"`{model_type}` with this adapter",
            fix=f"set data.packing: false (supported: {', '.join(sorted(PLAIN_HEAD_TYPES))})",
        )
    longest = max((example_length(e) for e in encoded.examples["train"]), default=1)
    if packed_attention.enable(model, longest):
        capacity, how = None, "one row per batch, attention per document (causal SDPA)"
    else:
        capacity = max(longest, max_length)
        how = f"rows of up to {capacity} tokens, attention through a block-diagonal mask"
    notes.append(f"packing: each batch's sequences as documents, {how}")
    return dataclasses.replace(collate, packed=True, capacity=capacity)  # type: ignore[type-var]


def build_parts(
    sections: TrainSections,
    model: torch.nn.Module,
    tokenizer: object,
    encoded: EncodedData,
    task: str,
    hooks: LoopHooks,
    dist: Distribution | None = None,
) -> Parts:
    """Accelerator, gradient checkpointing, batches, optimizer and schedule; ``hooks`` go into the set-up.

    With several processes (``dist``) the model is not wrapped in DDP (distributed/group.py says why) and the
    schedule steps once per optimizer step: accelerate's would step once per process, as if each process
    had seen a different batch of a 1-process schedule."""
    from accelerate import Accelerator

    cfg, data, dist = sections.training, sections.data, dist or Distribution()
    mixed = mixed_precision(cfg)
    accelerator = Accelerator(
        mixed_precision=mixed,
        cpu=not torch.cuda.is_available(),
        step_scheduler_with_optimizer=not dist.active,
    )
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})  # type: ignore[operator]
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()  # type: ignore[operator]
    module = module_for(encoded.objective, task)
    collate = module.collate(data.tokenization, tokenizer, task)
    train_examples, train_collate = encoded.examples["train"], collate
    notes: list[str] = []
    if data.packing and ROWS[encoded.objective].preference:
        train_collate = _packed_sequences(
            model, module, encoded, collate, data.tokenization.max_length, notes
        )
    elif data.packing:
        train_examples, train_collate = _packed(
            model, encoded, cast(PadCollator, collate), data.tokenization.max_length, notes
        )
    updates = getattr(module, "updates_per_window", lambda training: 1)(cfg)
    steps = total_steps(len(train_examples), cfg, dist.world_size, updates)
    model, optimizer, scheduler, sharded = _placed(model, cfg, encoded.objective, accelerator, dist, steps)
    precision, line = _precision_note(cfg, mixed, model, accelerator.device)
    notes.insert(0, line)
    if sharded is not None:
        notes.append(sharded.describe())
    context = Context(sections, model, tokenizer, encoded, collate, notes)
    objective = build_objective(module, context)
    if cfg.compile:
        model = torch.compile(model)
    dist.seed_training(sections.seed)
    fixed = FixedBatches(
        train_examples,
        train_collate,
        cfg,
        sections.seed,
        data.group_by_length,
        dist,
        _epoch_rows(encoded, sections.seed),
    )
    setup = TrainSetup(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        accelerator=accelerator,
        source=_batch_source(module, context, fixed, steps),
        objective=objective,
        cfg=cfg,
        hooks=hooks,
        dist=dist,
        placement=sharded,  # None: the whole model on each process (the set-up's default)
    )
    return Parts(setup, collate, notes, precision)


def _batch_source(module: ObjectiveModule, context: Context, fixed: FixedBatches, steps: int) -> BatchSource:
    """The module's own batch source when it makes its batches (``batch_source(context, fixed)``: e.g.
    rollouts generated from the fixed rows as prompts), else the fixed data. Either makes the ``steps``
    the schedule was built for (a module whose windows serve several updates says how many with
    ``updates_per_window(training)``)."""
    make = getattr(module, "batch_source", None)
    if make is None:
        return fixed
    source = cast(BatchSource, make(context, fixed))
    if source.total_steps() != steps:
        raise RuntimeError(
            f"{module.NAME}'s batch source makes {source.total_steps()} steps, not the "
            f"{steps} the schedule was built for"
        )
    return source


def _placed(
    model: torch.nn.Module,
    cfg: TrainingConfig,
    objective: str,
    accelerator: object,
    dist: Distribution,
    steps: int,
) -> tuple[torch.nn.Module, torch.optim.Optimizer, object, Sharded | None]:
    """Model, optimizer and schedule placed for this run's processes: one process (accelerate's), every
    process the whole model (ddp), or its state sharded (fsdp before the optimizer is built, since the
    optimizer updates the shards; deepspeed around the optimizer built for the whole model)."""
    if not dist.active:
        optimizer = build_optimizer(model, cfg)
        return (*accelerator.prepare(model, optimizer, build_scheduler(optimizer, cfg, steps)), None)  # type: ignore[attr-defined]
    if dist.strategy in ("fsdp", "deepspeed") and ROWS[objective].preference:  # inferred from the data
        raise sharded_refusal("training.objective", dist.strategy, f"`{objective}` (from the data)")
    model = model.to(accelerator.device)  # type: ignore[attr-defined]
    dist.broadcast_trainable(model)  # every process starts from rank 0's weights (adapters start random)
    sharded: Sharded | None = None
    if dist.strategy == "fsdp":
        from llmft.train.distributed.sharding import ShardedModel

        sharded = ShardedModel(model, cfg.distributed.fsdp, dist)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, steps)
    if dist.strategy == "deepspeed":
        from llmft.config.distributed import deepspeed_config
        from llmft.train.distributed.zero import ZeroModel

        ds = deepspeed_config(cfg.distributed.deepspeed or {}, cfg, mixed_precision(cfg))
        return model, optimizer, scheduler, ZeroModel(model, optimizer, ds, dist)
    return model, *accelerator.prepare(optimizer, scheduler), sharded  # type: ignore[attr-defined]


def _epoch_rows(encoded: EncodedData, seed: int) -> Callable[[int], list[int]] | None:
    """The rows of each epoch under a drawn mixture of data sets (`weighted`, `temperature`)."""
    mixture = encoded.mixture
    if mixture is None or mixture.mode == "concat":
        return None
    return lambda epoch: mixture.epoch_rows(seed, epoch)
