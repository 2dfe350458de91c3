"""The training loop: short enough to read in one screen, with the varying parts as small functions.

Every token counts the same: the loss of an optimizer step is the sum over its micro-batches divided by
the loss tokens of the whole accumulation window (not a mean of per-batch means). The batch order is a
function of (seed, epoch), so a resumed run continues with exactly the batches it had not trained on.
The loss itself is the objective's (objectives.py); what happens around a step (evaluation, checkpoints,
metrics, stop requests) are the ``LoopHooks`` the trainer gives at construction. Several processes share
each step's rows and sum their gradients (``Distribution``, distributed/group.py, says how and why); where
the model's state lives among them (whole on each, FSDP, ZeRO) is the set-up's ``Placement``
(distributed/placement.py), which every forward, backward and update goes through.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from llmft.config.schema import TrainingConfig
from llmft.errors import TrainingError
from llmft.evaluate.best import Best
from llmft.train.batches import BatchSource, Window
from llmft.train.distributed.group import Distribution
from llmft.train.distributed.placement import Placement, Replicated
from llmft.train.objectives import Objective
from llmft.train.progress import Progress


@dataclass
class LoopState:
    """Counters that fully describe where training is; saved in checkpoints."""

    step: int = 0
    epoch: int = 0
    window_in_epoch: int = 0
    tokens_seen: int = 0
    loss_tokens_seen: int = 0
    best_metric: float | None = None
    evals_without_improvement: int = 0
    skipped_nonfinite: int = 0
    stop_reason: str = ""
    world_size: int = 1  # processes the run trained with (the data position counts in global batches)
    train_losses: list[tuple[int, float]] = field(default_factory=list)


def _no_log(record: dict[str, object]) -> None:
    """The default sink of ``LoopHooks.log``: nothing."""


@dataclass(frozen=True)
class LoopHooks:
    """What the loop calls out to, all given at construction (the trainer binds its own methods).

    ``evaluate`` returns the validation metrics (None: no validation split); ``checkpoint`` writes one;
    ``evaluated(step, metrics)`` is told of each evaluation (HPO reports and prunes through it, by raising);
    ``last_checkpoint`` names the last complete checkpoint in errors (None when none was saved).
    """

    evaluate: Callable[[], dict[str, float]] | None = None
    checkpoint: Callable[[LoopState], object] | None = None
    evaluated: Callable[[int, dict[str, float]], None] | None = None
    log: Callable[[dict[str, object]], None] = _no_log
    should_stop: Callable[[int], bool] = lambda step: False  # given the step just made
    last_checkpoint: Callable[[], object | None] = lambda: None
    progress: Progress | None = None


@dataclass
class TrainSetup:
    """What the loop trains: model, optimizer, schedule, the source of its batches, the objective."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    accelerator: object
    # What the loop trains on: the fixed rows (``FixedBatches``) or an objective's own source (rollouts).
    source: BatchSource
    objective: Objective
    cfg: TrainingConfig
    hooks: LoopHooks = field(default_factory=LoopHooks)
    dist: Distribution = field(default_factory=Distribution)
    # Where the model's state lives: FSDP or DeepSpeed shard it across the processes; by default (None) every
    # process holds the whole model (``Replicated``).
    placement: Placement = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.placement is None:
            self.placement = Replicated(self.model, self.accelerator, self.dist)

    def forward(self, fn: Callable[..., Any], batch: dict[str, torch.Tensor]) -> Any:
        """``fn(model, batch)`` (a loss, an evaluation count) through the placement: under FSDP through the
        sharded root, which gathers the weights it holds around the call; under DeepSpeed on its engine's
        module."""
        return self.placement.call(fn, batch)


def _step(setup: TrainSetup, window: Window, state: LoopState) -> torch.Tensor:
    """One optimizer step over an accumulation window (this process's share of it); returns the step's
    mean loss (a device tensor), summed over processes like the gradients."""
    acc, dist, placement = setup.accelerator, setup.dist, setup.placement
    batches = window.mine
    units = sum(setup.objective.units(b) for b in batches)
    tokens = sum(int(b.get("token_mask", b.get("attention_mask")).sum()) for b in batches)  # type: ignore[union-attr]
    window_tokens, tokens = dist.sum_counts(units, tokens)
    window_tokens = max(1, window_tokens)
    state.tokens_seen += tokens
    step_loss = torch.zeros((), device=acc.device)  # type: ignore[attr-defined]
    # Under FSDP or ZeRO every process makes the same passes (each gathers and reduces with the others): a
    # process with a batch fewer in a part-full last window adds a filler pass at weight 0.
    passes = batches + [window.filler() for _ in range(placement.idle_passes(window.size, len(batches)))]
    for i, batch in enumerate(passes):
        batch = {k: v.to(acc.device) for k, v in batch.items()}  # type: ignore[attr-defined]
        with placement.gradient_sync(i == len(passes) - 1):  # one reduction, after the last backward
            with acc.autocast():  # type: ignore[attr-defined]
                loss_sum, _ = setup.forward(setup.objective.loss, batch)
                loss = loss_sum / window_tokens if i < len(batches) else loss_sum * 0.0
            placement.backward(loss)
        step_loss += loss.detach()
    state.loss_tokens_seen += window_tokens
    return placement.reduce_step(step_loss)


def _last_good(setup: TrainSetup) -> str:
    last = setup.hooks.last_checkpoint()
    return f"the last good checkpoint is {last}" if last else "no checkpoint was saved yet"


def _finite_or_handle(setup: TrainSetup, state: LoopState, value: torch.Tensor, what: str = "loss") -> bool:
    """False when the step must be skipped; raises under nan_policy `error`.

    ``value`` is the step's loss or (``what`` = "gradient norm") its total gradient norm; a non-finite
    gradient with a finite loss would turn the weights into NaN just the same.
    """
    if torch.isfinite(value):
        return True
    if setup.cfg.nan_policy == "skip":
        state.skipped_nonfinite += 1
        _zero_grad(setup)
        if state.skipped_nonfinite > max(10, state.step // 10):
            raise TrainingError(
                f"{state.skipped_nonfinite} non-finite losses skipped by step {state.step + 1}: "
                f"training has diverged; {_last_good(setup)}",
                fix="lower training.learning_rate",
            )
        return False
    raise TrainingError(
        f"the {what} became non-finite ({float(value)}) at step {state.step + 1}; {_last_good(setup)}",
        fix="lower training.learning_rate, enable gradient clipping (training.max_grad_norm), avoid fp16 "
        "(overflow) or set training.nan_policy: skip to skip such batches (a resume may change nan_policy)",
    )


def _grad_norm(setup: TrainSetup, needed: bool) -> torch.Tensor | None:
    """The total gradient norm, clipped to max_grad_norm when that is set (the norm then comes free with
    the clipping); without clipping it is computed only when ``needed``. A device tensor: no host sync."""
    max_norm = setup.cfg.max_grad_norm
    if max_norm is not None:
        return setup.placement.clip_grad_norm(max_norm)
    return setup.placement.grad_norm() if needed else None


def _apply_update(setup: TrainSetup) -> None:
    setup.placement.step(setup.optimizer)  # FSDP: the optimizer on the shards; DeepSpeed: its engine's step
    setup.scheduler.step()


def _zero_grad(setup: TrainSetup) -> None:
    setup.placement.zero_grad(setup.optimizer)


def _maybe_evaluate(setup: TrainSetup, state: LoopState, end_of_epoch: bool) -> None:
    cfg, hooks = setup.cfg, setup.hooks
    due = (cfg.eval_strategy == "steps" and cfg.eval_steps and state.step % cfg.eval_steps == 0) or (
        cfg.eval_strategy == "epoch" and end_of_epoch
    )
    if not due or hooks.evaluate is None:
        return
    metrics = hooks.evaluate()
    hooks.log({"step": state.step, "epoch": state.epoch, **metrics})
    if hooks.progress:
        hooks.progress.note(
            ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if not k.endswith("_tokens"))
        )
    _early_stopping(setup, state, metrics)
    if hooks.evaluated is not None:
        hooks.evaluated(state.step, metrics)


def _early_stopping(setup: TrainSetup, state: LoopState, metrics: dict[str, float]) -> None:
    """Count evaluations without improvement; the best value lives in the state (saved in checkpoints)."""
    cfg = setup.cfg
    value = metrics.get(cfg.early_stopping_metric)
    if value is None:
        return
    best = Best.of(cfg.early_stopping_metric, value=state.best_metric)
    if best.update(value):
        state.best_metric, state.evals_without_improvement = best.value, 0
    else:
        state.evals_without_improvement += 1
    patience = cfg.early_stopping_patience
    if patience is not None and state.evals_without_improvement >= patience:
        state.stop_reason = (
            f"early stopping: {cfg.early_stopping_metric} did not improve in {patience} evaluations"
        )


def checkpoint_due(cfg: TrainingConfig, step: int, end_of_epoch: bool, minutes_since_save: float) -> bool:
    """Whether a checkpoint is due after ``step``: by the strategy (every save_steps, or each epoch's end),
    or because save_every_minutes of training passed since the last one (any strategy but `no`)."""
    if cfg.save_strategy == "no":
        return False
    if cfg.save_strategy == "steps" and cfg.save_steps and step % cfg.save_steps == 0:
        return True
    if cfg.save_strategy == "epoch" and end_of_epoch:
        return True
    return cfg.save_every_minutes is not None and minutes_since_save >= cfg.save_every_minutes


def _maybe_checkpoint(
    setup: TrainSetup, state: LoopState, end_of_epoch: bool, last_save: list[float]
) -> None:
    """Checkpoint when due; ``last_save`` holds the monotonic time of the last one (or of the start)."""
    minutes = setup.dist.max_value((time.monotonic() - last_save[0]) / 60)  # every process decides alike
    if setup.hooks.checkpoint is not None and checkpoint_due(setup.cfg, state.step, end_of_epoch, minutes):
        setup.hooks.checkpoint(state)
        last_save[0] = time.monotonic()


def _log_step(
    setup: TrainSetup,
    state: LoopState,
    running: torch.Tensor,
    steps: int,
    since: tuple[float, int],
    norm: torch.Tensor | None = None,
) -> None:
    """One metrics record; ``norm`` is this step's gradient norm (before clipping), when it was computed."""
    # The only host sync of the loop, once per logging step: the loss sum and the gradient norm together.
    values = running.float()[None]
    if norm is not None:
        values = torch.stack([values[0], torch.as_tensor(norm, device=running.device).float()])
    synced = values.tolist()
    mean = synced[0] / max(steps, 1)
    state.train_losses.append((state.step, mean))
    lr = setup.scheduler.get_last_lr()[0]
    started, tokens_at_start = since
    elapsed = max(time.perf_counter() - started, 1e-9)
    record = {
        "step": state.step,
        "epoch": state.epoch,
        "loss": mean,
        "learning_rate": lr,
        "tokens_seen": state.tokens_seen,
        "tokens_per_second": (state.tokens_seen - tokens_at_start) / elapsed,
        **setup.objective.report("train"),
    }
    if norm is not None:
        record["grad_norm"] = synced[1]
    setup.hooks.log(record)
    if setup.hooks.progress:
        progress = setup.hooks.progress
        progress.update(state.step, loss=mean, lr=lr, tokens_per_second=record["tokens_per_second"])


def _checks_each_step(setup: TrainSetup) -> bool:
    """Check for non-finite values every step (a host sync) where that is free (CPU) or needed (skip)."""
    return setup.cfg.nan_policy == "skip" or setup.accelerator.device.type == "cpu"  # type: ignore[attr-defined]


def train(setup: TrainSetup, state: LoopState | None = None) -> LoopState:
    """Run optimizer steps until max steps/epochs, early stopping or a stop request.

    Non-finite losses and gradient norms are checked every step on CPU or under nan_policy `skip` (a host
    sync); otherwise only at logging steps, through values kept on the device in between. The gradient norm
    is not checked under an fp16 loss scaler, which skips steps with inf gradients by itself.
    """
    state = state or LoopState()
    setup.model.train()
    source = setup.source
    goal = source.total_steps()
    started, tokens_at_start = time.perf_counter(), state.tokens_seen
    device = setup.accelerator.device  # type: ignore[attr-defined]
    running, steps_since_log = torch.zeros((), device=device), 0
    grad_norms = torch.zeros((), device=device)  # sum of the gradient norms since the last check
    check_each_step = _checks_each_step(setup)
    check_grads = getattr(setup.accelerator, "scaler", None) is None
    last_save = [time.monotonic()]  # save_every_minutes counts training time since the last checkpoint
    while state.step < goal and not state.stop_reason:
        count = source.window_count(state.epoch)
        for w in range(state.window_in_epoch, count):
            step_loss = _step(setup, source.window(state.epoch, w), state)
            state.window_in_epoch = w + 1
            if check_each_step and not _finite_or_handle(setup, state, step_loss):
                continue
            log_now = (state.step + 1) % setup.cfg.logging_steps == 0 or state.step + 1 == goal
            norm = _grad_norm(setup, needed=check_grads and (check_each_step or log_now))
            if norm is not None and check_grads:
                if check_each_step:
                    if not _finite_or_handle(setup, state, norm, "gradient norm"):
                        continue
                else:
                    grad_norms += norm.detach()
            running, steps_since_log = running + step_loss.detach(), steps_since_log + 1
            if log_now and not check_each_step:  # nan_policy `error` here: raises on a non-finite value
                _finite_or_handle(setup, state, running)
                _finite_or_handle(setup, state, grad_norms, "gradient norm")
                grad_norms = torch.zeros((), device=device)
            _apply_update(setup)
            state.step += 1
            if log_now:
                _log_step(setup, state, running, steps_since_log, (started, tokens_at_start), norm)
                running, steps_since_log = torch.zeros((), device=device), 0
            end_of_epoch = state.window_in_epoch == count
            _maybe_evaluate(setup, state, end_of_epoch)
            _maybe_checkpoint(setup, state, end_of_epoch, last_save)
            stop = setup.hooks.should_stop(state.step)
            if state.step >= goal or state.stop_reason or stop:
                state.stop_reason = state.stop_reason or ("stop requested" if stop else "")
                break
        if state.window_in_epoch >= count:
            state.epoch, state.window_in_epoch = state.epoch + 1, 0
    return state
