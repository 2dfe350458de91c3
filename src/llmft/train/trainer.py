"""The trainer: one object per run, built once from its sections, that trains, checkpoints and resumes.

``pipeline.run`` builds a ``LocalTrainer`` and calls ``setup → resume (when asked) → train``; the loop
(loop.py) runs the steps and calls back through the ``LoopHooks`` the trainer binds at set-up; the loss is
the task's objective (objectives.py). Callers say what they want to hear of through ``Callbacks``, given
at construction. ``Trainer`` is the Protocol the pipeline relies on, so a multi-process trainer can stand
in without inheriting from this one. With several processes (``Distribution``, distributed/group.py)
every process runs this trainer; rank 0 alone writes metrics and checkpoints, the others wait for it.
Whatever the strategy, the model's state is reached through the set-up's ``Placement``
(distributed/placement.py): whole tensors for checkpoints, shards loaded back, the final model gathered.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import torch

from llmft.data.build import EncodedData
from llmft.data.collate import example_length
from llmft.errors import RunInterrupted
from llmft.evaluate.best import Best
from llmft.evaluate.run import evaluate
from llmft.run_dir import RunDir
from llmft.train import checkpoint as ckpt
from llmft.train.artifacts import MetricsLog, truncate_after
from llmft.train.commands import resume_command
from llmft.train.distributed.group import Distribution
from llmft.train.loop import LoopHooks, LoopState, TrainSetup, train
from llmft.train.parts import Parts, build_parts
from llmft.train.preflight import preflight
from llmft.train.progress import Progress
from llmft.train.sections import TrainSections
from llmft.train.signals import GracefulStop

Say = Callable[[str], None]


class Trainer(Protocol):
    """What a run needs of a trainer."""

    def setup(self) -> list[str]: ...
    def train(self, state: LoopState | None = None) -> LoopState: ...
    def save_checkpoint(self, state: LoopState) -> Path: ...
    def resume(self, folder: Path) -> LoopState: ...


@dataclass(frozen=True)
class Callbacks:
    """What the caller is told, fixed at construction.

    ``on_log(record)``: each metrics record (a logging step or an evaluation), after metrics.jsonl has it.
    ``on_evaluate(step, metrics)``: after each evaluation during training; HPO reports and prunes through
    it (by raising). ``say``: one line for the user. ``checkpoint_files()``: called as each checkpoint is
    written, returns small files (name → text) to keep in it: the tracker run ids a resume continues.
    ``more_metrics(model)``: further validation metrics of each in-training evaluation (evaluation by
    generation with `when: every_eval`), so they can steer early stopping, the best checkpoint and a search.
    """

    on_log: Callable[[dict[str, object]], None] | None = None
    on_evaluate: Callable[[int, dict[str, float]], None] | None = None
    say: Say = lambda text: None
    checkpoint_files: Callable[[], dict[str, str]] | None = None
    more_metrics: Callable[[torch.nn.Module], dict[str, float]] | None = None


@dataclass
class RunData:
    """What the trainer trains on: the tokenizer, the encoded splits, the task and the rows' fingerprint."""

    tokenizer: object
    encoded: EncodedData
    task: str
    fingerprint: str = ""  # of the prepared rows; saved in checkpoints so a resume can check them


class LocalTrainer:
    """Trains in this process (one device, or the CPU)."""

    def __init__(
        self,
        sections: TrainSections,
        model: torch.nn.Module,
        data: RunData,
        out: Path,
        *,
        callbacks: Callbacks | None = None,
        progress: bool = True,
        command: str | None = None,
        dist: Distribution | None = None,
    ) -> None:
        self.sections, self.data, self.out = sections, data, out
        self.dist = dist or Distribution()
        self._signal = 0  # the stop signal all processes agreed on (0: none)
        self.callbacks = callbacks or Callbacks()
        self.command = command
        self._model, self._progress = model, progress
        self.metrics_log = MetricsLog(RunDir(out).metrics_file, command)
        metric = sections.training.save_best_metric
        self.best = Best.of(metric) if metric else None
        self._step_eval: tuple[int, dict[str, float]] | None = None  # the latest evaluation and its step
        self._stop: GracefulStop | None = None
        self.parts: Parts | None = None
        self._gathered: torch.nn.Module | None = None  # the whole model, gathered after training

    @property
    def precision(self) -> str:
        """What training computes in (`fp32`, `bf16`, `fp16`), known after ``setup``."""
        return self.parts.precision if self.parts is not None else ""

    # ------------------------------------------------------------------------------------ set-up
    def setup(self) -> list[str]:
        """Build the parts and check the output dir has room; returns notes for the user (packing)."""
        parts = build_parts(
            self.sections,
            self._model,
            self.data.tokenizer,
            self.data.encoded,
            self.data.task,
            self.hooks(),
            self.dist,
        )
        steps = parts.setup.source.total_steps()
        shown = self._progress and self.dist.is_main
        parts.setup.hooks = replace(parts.setup.hooks, progress=Progress(steps, enabled=shown))
        self.parts = parts
        params = list(self.model.parameters())
        count = lambda p: getattr(p, "ds_numel", p.numel())  # noqa: E731 - ZeRO-3 empties p.data
        trainable = sum(count(p) for p in params if p.requires_grad)
        preflight(self.out, self.sections.training, trainable, sum(count(p) for p in params))
        return parts.notes

    def _should_stop(self, step: int) -> bool:
        """Whether a stop signal reached any process: all then stop after the same step."""
        if self._stop is not None:
            self._stop.hold_for_tests(step)
        local = self._stop.signal if self._stop is not None and self._stop.signal else 0
        self._signal = int(self.dist.max_value(local))
        return self._signal != 0

    def hooks(self) -> LoopHooks:
        """The loop's calls into this trainer: evaluation, checkpoints, metrics, stop requests."""
        has_validation = bool(self.data.encoded and self.data.encoded.examples.get("validation"))
        return LoopHooks(
            evaluate=self._evaluate_validation if has_validation else None,
            checkpoint=self.save_checkpoint,
            evaluated=self._evaluated,
            log=self._log,
            should_stop=self._should_stop,
            last_checkpoint=lambda: ckpt.latest_checkpoint(self.out),
        )

    @property
    def loop(self) -> TrainSetup:
        if self.parts is None:
            raise RuntimeError("LocalTrainer.setup() must run first")
        return self.parts.setup

    @property
    def model(self) -> torch.nn.Module:
        return self.loop.model if self.parts else self._model

    def model_for_saving(self) -> torch.nn.Module:
        """The plain (peft or transformers) model, without accelerate's wrappers; under FSDP/ZeRO the
        whole model that ``gather_model`` put together (rank 0), since the live one holds only shards."""
        model = self._gathered if self._gathered is not None else self.loop.placement.whole_model()
        if model is None:
            raise RuntimeError("a sharded model is saved through gather_model(), called on every rank")
        return model

    def gather_model(self) -> torch.nn.Module | None:
        """After training, on every process: the model to save, evaluate by generation and return (rank 0;
        the others get None under FSDP/ZeRO, whose whole model is put together on rank 0 only)."""
        if self._gathered is None:
            self._gathered = self.loop.placement.gathered_model()
            if self._gathered is not None:
                from llmft.train import packed_attention

                packed_attention.disable(self._gathered)
        return self._gathered

    # ----------------------------------------------------------------------------------- training
    def train(self, state: LoopState | None = None) -> LoopState:
        """Train; on SIGINT/SIGTERM finish the step, checkpoint, and raise RunInterrupted (exit 130/143).

        Afterwards training-only settings (packed attention) are undone: the model is standard again.
        """
        # The stop checkpoint is written inside: a second signal still exits at once.
        state = state or LoopState()
        state.world_size = self.dist.world_size
        with GracefulStop(says=self.dist.is_main) as stop:
            self._stop = stop
            try:
                with self.loop.hooks.progress or nullcontext():
                    state = train(self.loop, state)
                folder = self._stop_checkpoint(state) if self._signal else None
            finally:
                self._stop = None
        if self._signal:
            raise RunInterrupted(
                f"stopped by signal at step {state.step}; checkpoint written to {folder}",
                exit_code=128 + self._signal,
                fix=f"continue with `{resume_command(self.command)}`",
            )
        from llmft.train import packed_attention

        packed_attention.disable(self.loop.placement.model)
        return state

    def _stop_checkpoint(self, state: LoopState) -> Path:
        """The checkpoint of the step training stopped at: the one just written for it, or a new one.
        Rank 0 decides (another rank's view of a shared file system may lag), so all take the same path."""
        folder = RunDir(self.out).checkpoint(state.step)
        latest = ckpt.latest_checkpoint(self.out) if self.dist.is_main else None
        written = latest is not None and latest.name == folder.name
        if self.dist.max_value(1.0 if written else 0.0):
            self.dist.barrier()  # the others wait as for a write
            return folder
        return self.save_checkpoint(state)

    # -------------------------------------------------------------------------------- checkpoints
    def save_checkpoint(self, state: LoopState) -> Path:
        """A checkpoint now, and the best-checkpoint bookkeeping.

        With save_best_metric, a checkpoint is judged by the evaluation of its own step only (eval_steps a
        divisor of save_steps, or both per epoch): a checkpoint written at a step without an evaluation is
        never marked best, since an earlier evaluation says nothing of its weights. With several processes
        rank 0 writes (all hold the same weights and optimizer state) while the others wait.
        """
        placement = self.loop.placement  # FSDP/ZeRO: every process gathers the whole tensors with the others
        whole = placement.full_trainable(), placement.full_optimizer_state(self.loop.optimizer)
        rngs = self.dist.gather(ckpt.rng_state_bytes())  # each process's dropout masks continue on resume
        if not self.dist.is_main:
            self.dist.barrier()
            return RunDir(self.out).checkpoint(state.step)
        folder = self._write_checkpoint(state, whole, rngs)  # a failed write raises; the others are stopped
        self.dist.barrier()
        return folder

    def _write_checkpoint(self, state: LoopState, whole: ckpt.Whole, rngs: list[bytes] | None) -> Path:
        folder = ckpt.write_checkpoint(
            self.out,
            whole=whole,
            rank_rngs=rngs[1:] if rngs else None,
            scheduler=self.loop.scheduler,
            state=state,
            config_yaml=ckpt.config_yaml(self.sections.config_data),
            keep=self.sections.training.save_total_limit,
            scaler=getattr(self.loop.accelerator, "scaler", None),
            data_fingerprint=self.data.fingerprint,
            command=self.command,
            extra_files=self.callbacks.checkpoint_files() if self.callbacks.checkpoint_files else None,
            source_state=self.loop.source.state_dict(),
        )
        evaluated = self._step_eval
        if self.best is None or evaluated is None or evaluated[0] != state.step:
            return folder
        value = evaluated[1].get(self.best.metric)
        if value is not None and self.best.update(value):
            try:
                ckpt.mark_best(self.out, folder, self.best.metric, value)
            except OSError as err:
                marker = RunDir(self.out).best_file
                raise ckpt.write_failed(str(marker), err, self.out, command=self.command) from err
        return folder

    def resume(self, folder: Path) -> LoopState:
        """Load ``folder`` (already checked by train/resume.py) and continue from its step: metrics (and RL
        samples) the killed run wrote after it are dropped (the resumed run writes them again), and the best
        value so far is restored, so a worse evaluation after the resume cannot move the best."""
        state = ckpt.restore_checkpoint(  # whole tensors, cut into this process's shards under FSDP/ZeRO
            folder,
            self.loop.placement,
            optimizer=self.loop.optimizer,
            scheduler=self.loop.scheduler,
            scaler=getattr(self.loop.accelerator, "scaler", None),
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            source=self.loop.source,
        )
        if self.dist.is_main:
            self.metrics_log.truncate_after(state.step)
            truncate_after(RunDir(self.out).rollouts_file, state.step)  # online RL's samples, if any
        recorded = ckpt.read_best(self.out)
        if self.best is not None and recorded is not None:
            metric, step, value = recorded
            if metric == self.best.metric and step <= state.step:  # a later one is written again
                self.best.value = value
        self.callbacks.say(f"resumed from {folder} at step {state.step} (epoch {state.epoch})")
        return state

    # --------------------------------------------------------------------------------- evaluation
    def evaluate(self, examples: list[dict[str, object]], prefix: str) -> dict[str, float]:
        """Loss and task metrics of the current model on ``examples``."""
        objective = self.loop.objective
        metrics = evaluate(
            self.model,
            self._eval_batches(examples),
            objective.loss,
            objective.eval_task or self.data.task,
            len(self.data.encoded.label_names) if self.data.encoded.label_names else None,
            prefix=prefix,
            metrics=self.sections.evaluation.metrics,
            call=self.loop.forward,
        )
        metrics.update({f"{prefix}_{k}": v for k, v in objective.report("eval").items()})
        return metrics

    def evaluate_split(self, split: str, prefix: str) -> dict[str, float]:
        """Metrics on a split: over all its rows, and with several data sets also per set
        (`eval_<name>_loss`, ...)."""
        examples = self.data.encoded.examples[split]
        metrics = self.evaluate(examples, prefix)
        sources = self.data.encoded.sources.get(split, [])
        for name, start, end in sources if len(sources) > 1 else []:
            metrics.update(self.evaluate(examples[start:end], f"{prefix}_{name}"))
        return metrics

    def final_metrics(self) -> dict[str, float]:
        """Validation (eval_*) and test (test_*) metrics of the final model."""
        metrics: dict[str, float] = {}
        for split, prefix in (("validation", "eval"), ("test", "test")):
            if split == "test" and not self.sections.evaluation.on_test:
                continue
            if self.data.encoded.examples.get(split):
                metrics.update(self.evaluate_split(split, prefix))
        return metrics

    def _eval_batches(self, examples: list[dict[str, object]]) -> list[dict[str, torch.Tensor]]:
        """Evaluation batches in a fixed, length-sorted order (less padding, same result every time)."""
        size = self.sections.training.eval_batch_size or self.sections.training.batch_size
        lengths = [example_length(e) for e in examples]
        order = sorted(range(len(examples)), key=lambda i: lengths[i])
        collate = self.parts.eval_collate  # type: ignore[union-attr]
        return [collate([examples[i] for i in order[j : j + size]]) for j in range(0, len(order), size)]

    def _evaluate_validation(self) -> dict[str, float]:
        metrics = self.evaluate_split("validation", "eval")
        if self.callbacks.more_metrics is not None:
            metrics.update(self.callbacks.more_metrics(self.model_for_saving()))
        return metrics

    def _evaluated(self, step: int, metrics: dict[str, float]) -> None:
        self._step_eval = (step, dict(metrics))
        if self.callbacks.on_evaluate is not None:
            self.callbacks.on_evaluate(step, metrics)

    def _log(self, record: dict[str, object]) -> None:
        if not self.dist.is_main:  # the same record on every process: rank 0 writes it
            return
        self.metrics_log(record)
        if self.callbacks.on_log is not None:
            self.callbacks.on_log(record)
