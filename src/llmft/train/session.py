"""Assemble the training parts (accelerator, optimizer, schedule, batches, evaluation) for one run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from llmft.config.schema import RunConfig, TrainingConfig
from llmft.data.build import EncodedData
from llmft.data.collate import PackedCollator, PadCollator, batch_order, pack_examples
from llmft.errors import EnvironmentProblem, ModelError
from llmft.evaluate.run import evaluate
from llmft.train.artifacts import MetricsLog
from llmft.train.loop import LoopState, TrainSetup, total_steps, train
from llmft.train.loss import PLAIN_HEAD_TYPES, loss_function, supports_selective_head
from llmft.train.optim import build_optimizer, build_scheduler
from llmft.train.progress import Progress


@dataclass
class Session:
    setup: TrainSetup
    eval_collate: PadCollator
    eval_batch_size: int
    num_labels: int | None
    config: RunConfig
    out: Path
    config_path: str | None = None
    data_fingerprint: str = ""  # of the prepared rows; saved in checkpoints so a resume can check them
    last_eval: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the user should know about the set-up (packing)
    # save_best_metric: the best value so far (restored from checkpoints/best.json on resume), and the
    # evaluation of the latest evaluated step, (step, metrics): a checkpoint is judged only by its own step's.
    best_value: float | None = None
    step_eval: tuple[int, dict[str, float]] | None = None

    @property
    def model(self) -> torch.nn.Module:
        return self.setup.model

    def model_for_saving(self) -> torch.nn.Module:
        return self.setup.accelerator.unwrap_model(self.setup.model)  # type: ignore[attr-defined]

    def finish_training(self) -> None:
        """Undo training-only settings (packed attention): the saved and returned model is standard."""
        from llmft.train import packed_attention

        packed_attention.disable(self.model_for_saving())

    def batches(self, examples: list[dict[str, object]]) -> list[dict[str, torch.Tensor]]:
        """Evaluation batches in a fixed, length-sorted order (less padding, same result every time)."""
        lengths = [len(e["input_ids"]) for e in examples]  # type: ignore[arg-type]
        order = sorted(range(len(examples)), key=lambda i: lengths[i])
        groups = [order[i : i + self.eval_batch_size] for i in range(0, len(order), self.eval_batch_size)]
        return [self.eval_collate([examples[i] for i in g]) for g in groups]

    def evaluate(self, examples: list[dict[str, object]], prefix: str) -> dict[str, float]:
        metrics = evaluate(
            self.model,
            self.batches(examples),
            self.setup.loss_fn,
            self.setup.task,
            self.num_labels,
            prefix=prefix,
            metrics=self.config.evaluation.metrics,
        )
        if prefix == "eval":
            self.last_eval = metrics
        return metrics


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


def _collator(tokenizer: object, config: RunConfig, task: str) -> PadCollator:
    tok = config.data.tokenization
    pad_id = getattr(tokenizer, "pad_token_id", None)
    pad_id = int(pad_id if pad_id is not None else getattr(tokenizer, "eos_token_id", 0) or 0)
    fixed = tok.max_length if tok.padding == "max_length" else None
    return PadCollator(
        pad_id, tok.pad_to_multiple_of, fixed, label_is_sequence=task != "sequence_classification"
    )


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


def build_session(
    config: RunConfig,
    model: torch.nn.Module,
    tokenizer: object,
    encoded: EncodedData,
    task: str,
    out: Path,
    *,
    progress: bool = True,
    config_path: str | None = None,
) -> Session:
    from accelerate import Accelerator

    cfg = config.training
    accelerator = Accelerator(mixed_precision=mixed_precision(cfg), cpu=not torch.cuda.is_available())
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})  # type: ignore[operator]
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()  # type: ignore[operator]
    collate = _collator(tokenizer, config, task)
    train_examples, train_collate = encoded.examples["train"], collate
    notes: list[str] = []
    if config.data.packing:
        train_examples, train_collate = _packed(
            model, encoded, collate, config.data.tokenization.max_length, notes
        )
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, total_steps(len(train_examples), cfg))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    if cfg.compile:
        model = torch.compile(model)
    session = Session(
        setup=TrainSetup(  # evaluate is attached below, once the session exists
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            accelerator=accelerator,
            examples=train_examples,
            collate=train_collate,
            loss_fn=loss_function(task, model),
            task=task,
            cfg=cfg,
            seed=config.seed,
            group_by_length=config.data.group_by_length,
            log=MetricsLog(out / "metrics.jsonl", config_path),
        ),
        eval_collate=collate,
        eval_batch_size=cfg.eval_batch_size or cfg.batch_size,
        num_labels=len(encoded.label_names) if encoded.label_names else None,
        config=config,
        out=out,
        config_path=config_path,
        notes=notes,
    )
    validation = encoded.examples.get("validation")
    if validation:
        session.setup.evaluate = lambda: session.evaluate(validation, "eval")
    session.setup.progress = Progress(total_steps(len(train_examples), cfg), enabled=progress)
    return session


def run_training(session: Session, state: LoopState | None = None) -> LoopState:
    assert session.setup.progress is not None
    with session.setup.progress:
        return train(session.setup, state)


def final_metrics(session: Session, encoded: EncodedData) -> dict[str, float]:
    """Validation (eval_*) and test (test_*) metrics of the final model."""
    metrics: dict[str, float] = {}
    if encoded.examples.get("validation"):
        metrics.update(session.evaluate(encoded.examples["validation"], "eval"))
    if encoded.examples.get("test"):
        metrics.update(session.evaluate(encoded.examples["test"], "test"))
    return metrics


__all__ = ["Session", "batch_order", "build_session", "final_metrics", "run_training"]
