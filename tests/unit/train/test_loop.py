"""The loop on a toy model: token-weighted accumulation, early stopping, a seeded batch order, non-finite
losses and gradients, and how save_best_metric picks (and keeps over a resume) the best checkpoint."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator

from llmft.config.schema import TrainingConfig
from llmft.data.collate import PadCollator
from llmft.errors import TrainingError
from llmft.train.batches import FixedBatches, total_steps
from llmft.train.loop import LoopHooks, LoopState, TrainSetup, train
from llmft.train.objectives import Objective, row_units
from llmft.train.optim import build_optimizer, build_scheduler
from llmft.train.resume import find_checkpoint

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it


class Regressor(torch.nn.Module):
    """Predicts a per-example target from the first input id; loss summed over rows."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))


def loss_fn(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    target = batch["labels"].float()
    return ((model.weight - target) ** 2).sum(), int(target.numel())


def setup(cfg: TrainingConfig, examples: list[dict[str, object]], evaluate=None) -> TrainSetup:  # noqa: ANN001
    model = Regressor()
    opt = build_optimizer(model, cfg)
    return TrainSetup(
        model=model,
        optimizer=opt,
        scheduler=build_scheduler(opt, cfg, total_steps(len(examples), cfg)),
        accelerator=Accelerator(cpu=True),
        source=FixedBatches(examples, PadCollator(0, None, label_is_sequence=False), cfg, 0, False),
        objective=Objective("toy", loss_fn, row_units),
        cfg=cfg,
        hooks=LoopHooks(evaluate=evaluate),
    )


def examples(n: int) -> list[dict[str, object]]:
    return [{"input_ids": [1, 2], "labels": i % 3} for i in range(n)]


def test_accumulation_equals_one_big_batch() -> None:
    """4 micro-batches of 2 accumulated give the same update as one batch of 8 (every row weighs the same)."""
    data = examples(8)
    a = setup(
        TrainingConfig(
            batch_size=2,
            gradient_accumulation_steps=4,
            max_steps=1,
            optimizer="sgd",
            learning_rate=0.1,
            adam_beta1=0.5,
            max_grad_norm=None,
        ),
        data,
    )
    b = setup(
        TrainingConfig(
            batch_size=8, max_steps=1, optimizer="sgd", learning_rate=0.1, adam_beta1=0.5, max_grad_norm=None
        ),
        data,
    )
    train(a)
    train(b)
    torch.testing.assert_close(a.model.weight, b.model.weight)


def test_early_stopping_after_patience() -> None:
    scores = iter([1.0, 0.9, 0.95, 0.97, 0.99, 0.5])
    s = setup(
        TrainingConfig(
            batch_size=4,
            max_steps=50,
            eval_strategy="steps",
            eval_steps=1,
            early_stopping_patience=3,
            learning_rate=0.01,
        ),
        examples(16),
        evaluate=lambda: {"eval_loss": next(scores)},
    )
    state = train(s)
    assert state.step == 5 and "early stopping" in state.stop_reason


def test_resume_state_continues_mid_epoch() -> None:
    data = examples(12)
    cfg = TrainingConfig(
        batch_size=2,
        max_steps=6,
        learning_rate=0.05,
        optimizer="sgd",
        adam_beta1=0.5,
        lr_scheduler="constant",
    )
    full = setup(cfg, data)
    train(full)
    first = setup(cfg.model_copy(update={"max_steps": 3}), data)
    state = train(first)
    assert (state.step, state.epoch, state.window_in_epoch) == (3, 0, 3)
    rest = setup(cfg, data)
    rest.model.load_state_dict(first.model.state_dict())
    rest.optimizer.load_state_dict(first.optimizer.state_dict())
    rest.scheduler.load_state_dict(first.scheduler.state_dict())
    train(rest, LoopState(step=3, epoch=0, window_in_epoch=3))
    torch.testing.assert_close(rest.model.weight, full.model.weight)


# --------------------------------------------------------------------------- non-finite gradients
def _inf_gradients_on(s: TrainSetup, steps: set[int]) -> None:
    """A grad hook that turns the gradient into inf on the given (1-based) backward calls; the loss stays
    finite (as an overflow in the backward pass alone would)."""
    calls = [0]

    def hook(grad: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return torch.full_like(grad, float("inf")) if calls[0] in steps else grad

    s.model.weight.register_hook(hook)


@pytest.mark.parametrize("max_grad_norm", [None, 1.0])
def test_non_finite_gradients_with_a_finite_loss_stop_with_the_step(max_grad_norm: float | None) -> None:
    s = setup(TrainingConfig(batch_size=2, max_steps=4, max_grad_norm=max_grad_norm), examples(8))
    _inf_gradients_on(s, {3})
    with pytest.raises(TrainingError, match=r"gradient norm became non-finite .* at step 3") as caught:
        train(s)
    assert "no checkpoint was saved yet" in caught.value.message
    assert torch.isfinite(s.model.weight).all(), "the non-finite gradient reached the weights"


def test_non_finite_errors_name_the_last_good_checkpoint() -> None:
    s = setup(TrainingConfig(batch_size=2, max_steps=4), examples(8))
    s.hooks = replace(s.hooks, last_checkpoint=lambda: "out/checkpoints/step-0000002")
    _inf_gradients_on(s, {3})
    with pytest.raises(TrainingError, match="the last good checkpoint is out/checkpoints/step-0000002"):
        train(s)


def test_skip_policy_skips_non_finite_gradients_and_counts_them() -> None:
    s = setup(TrainingConfig(batch_size=2, max_steps=4, max_grad_norm=None, nan_policy="skip"), examples(16))
    _inf_gradients_on(s, {2})
    state = train(s)
    assert (state.step, state.skipped_nonfinite) == (4, 1)
    assert torch.isfinite(s.model.weight).all(), "a skipped step still changed the weights"


@pytest.mark.parametrize("max_grad_norm", [None, 1.0])
def test_without_per_step_checks_non_finite_gradients_are_caught_at_the_logging_step(
    monkeypatch: pytest.MonkeyPatch, max_grad_norm: float | None
) -> None:
    """As on a GPU under nan_policy `error`: no host sync per step, the check runs at logging steps."""
    from llmft.train import loop

    monkeypatch.setattr(loop, "_checks_each_step", lambda setup: False)
    cfg = TrainingConfig(batch_size=2, max_steps=8, logging_steps=4, max_grad_norm=max_grad_norm)
    s = setup(cfg, examples(16))
    _inf_gradients_on(s, {4})  # the loss of the logging step stays finite
    with pytest.raises(TrainingError, match=r"gradient norm became non-finite .* at step 4"):
        train(s)
    finite = setup(cfg, examples(16))
    assert train(finite).step == 8


# ------------------------------------------------------------------------- save_best_metric in the loop
def _sections(training: TrainingConfig):  # noqa: ANN202
    """What the trainer reads here: the training section, and the config data for config.yaml."""
    from llmft.config.schema import DataConfig, EvaluationConfig, ModelConfig
    from llmft.train.sections import TrainSections

    data = DataConfig.model_validate({"dataset": {"train_file": "t.jsonl"}})
    model = ModelConfig(name_or_path="m")
    return TrainSections(training, data, model, EvaluationConfig(), seed=0, config_data={"seed": 0})


def _session(out: Path, cfg: TrainingConfig, evals: dict[int, float]):  # noqa: ANN202
    """A toy trainer whose evaluation at step N gives eval_loss ``evals[N]``."""
    from llmft.train.parts import Parts
    from llmft.train.progress import Progress
    from llmft.train.trainer import LocalTrainer, RunData

    state = {"step": 0}
    trainer = LocalTrainer(_sections(cfg), None, RunData(None, None, "sequence_classification"), out)  # type: ignore[arg-type]
    toy = setup(cfg, examples(32))
    hooks = trainer.hooks()

    def log(record: dict[str, object]) -> None:  # the loop logs each step before evaluating it
        state["step"] = int(record["step"])  # type: ignore[call-overload]
        hooks.log(record)

    toy.hooks = replace(
        hooks,
        evaluate=lambda: {"eval_loss": evals[state["step"]]},
        log=log,
        progress=Progress(total_steps(32, cfg), enabled=False),
    )
    trainer.parts = Parts(toy, None, [])  # type: ignore[arg-type]
    return trainer


def _best(out: Path) -> dict[str, object]:
    return json.loads((out / "checkpoints" / "best.json").read_text())


def _cfg(max_steps: int, eval_steps: int, save_steps: int) -> TrainingConfig:
    return TrainingConfig(
        batch_size=2,
        max_steps=max_steps,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=None,
        save_best_metric="eval_loss",
        learning_rate=0.01,
    )


def test_the_best_checkpoint_is_judged_by_an_evaluation_of_its_own_step(tmp_path: Path) -> None:
    """Evaluations at steps 3 and 6, checkpoints at 2, 4 and 6: the low loss of step 3 says nothing of the
    weights of step 4, so only step 6 (evaluated itself) can be the best."""
    session = _session(tmp_path, _cfg(6, eval_steps=3, save_steps=2), {3: 0.1, 6: 0.4})
    session.train()
    assert _best(tmp_path) == {"checkpoint": "step-0000006", "metric": "eval_loss", "value": 0.4}


def test_a_worse_evaluation_after_a_resume_does_not_move_the_best(tmp_path: Path) -> None:
    evals = {2: 0.3, 4: 0.5, 6: 0.4}
    first = _session(tmp_path, _cfg(4, eval_steps=2, save_steps=2), evals)
    first.train()
    assert _best(tmp_path)["checkpoint"] == "step-0000002"

    resumed = _session(tmp_path, _cfg(6, eval_steps=2, save_steps=2), evals)
    state = resumed.resume(find_checkpoint(tmp_path, True))
    assert state.step == 4 and resumed.best.value == 0.3  # the Best tracker holds what best_value held
    state = resumed.train(state)
    assert state.step == 6
    assert _best(tmp_path) == {"checkpoint": "step-0000002", "metric": "eval_loss", "value": 0.3}
    assert (tmp_path / "checkpoints" / "step-0000006").is_dir()


@pytest.mark.parametrize("max_grad_norm", [1.0, None])
def test_logging_steps_carry_the_gradient_norm_before_clipping(max_grad_norm: float | None) -> None:
    """First step from w=0 on targets 0,1,2,0,1,2,0,1: d/dw mean((w-t)^2) = -2 * 7/8, norm 1.75 (clipped to
    1.0 for the update, but the logged norm is the one measured)."""
    cfg = TrainingConfig(max_steps=2, batch_size=8, logging_steps=1, max_grad_norm=max_grad_norm)
    s = setup(cfg, examples(8))
    records: list[dict[str, object]] = []
    s.hooks = replace(s.hooks, log=records.append)
    train(s)
    assert [r["step"] for r in records] == [1, 2]
    assert records[0]["grad_norm"] == pytest.approx(1.75)
    assert all(isinstance(r["grad_norm"], float) for r in records)
