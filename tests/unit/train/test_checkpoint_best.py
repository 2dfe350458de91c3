"""save_total_limit keeps the newest checkpoints, and save_best_metric protects the best one from pruning,
judges each checkpoint by its own step's evaluation and keeps its best over a resume."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from llmft.config.schema import TrainingConfig
from llmft.train import checkpoint as ckpt
from llmft.train.lifecycle import resume_state, train_with_signals
from llmft.train.loop import LoopState, TrainSetup, total_steps


def write(out: Path, step: int, keep: int) -> Path:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return ckpt.save_checkpoint(
        out,
        model=model,
        optimizer=opt,
        scheduler=sched,
        state=LoopState(step=step),
        config_yaml="seed: 0\n",
        keep=keep,
    )


def test_keep_last_k_and_the_best(tmp_path: Path) -> None:
    first = write(tmp_path, 1, keep=2)
    ckpt.mark_best(tmp_path, first, "eval_loss", 0.5)
    for step in (2, 3, 4):
        write(tmp_path, step, keep=2)
    names = [p.name for p in ckpt.complete_checkpoints(tmp_path / "checkpoints")]
    assert names == ["step-0000001", "step-0000003", "step-0000004"]
    state = json.loads((tmp_path / "checkpoints" / "step-0000004" / "state.json").read_text())
    assert state["step"] == 4 and len(state["config_hash"]) == 16
    assert ckpt.latest_checkpoint(tmp_path).name == "step-0000004"


# ------------------------------------------------------------------------- save_best_metric in the loop
class _Config:
    """What lifecycle.save needs of a RunConfig: its dump for the checkpoint's config.yaml."""

    def model_dump(self, mode: str = "json") -> dict[str, object]:
        return {"seed": 0}


def _session(out: Path, cfg: TrainingConfig, evals: dict[int, float]):  # noqa: ANN202
    """A toy session whose evaluation at step N gives eval_loss ``evals[N]``."""
    from accelerate import Accelerator

    from llmft.data.collate import PadCollator
    from llmft.train.optim import build_optimizer, build_scheduler
    from llmft.train.progress import Progress
    from llmft.train.session import Session

    model = torch.nn.Linear(2, 1)
    opt = build_optimizer(model, cfg)
    data = [{"input_ids": [1, 2], "labels": i % 3} for i in range(32)]

    def loss_fn(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        target = batch["labels"].float()
        return ((model.bias - target) ** 2).sum(), int(target.numel())

    state = {"step": 0}
    setup = TrainSetup(
        model=model,
        optimizer=opt,
        scheduler=build_scheduler(opt, cfg, total_steps(len(data), cfg)),
        accelerator=Accelerator(cpu=True),
        examples=data,
        collate=PadCollator(0, None, label_is_sequence=False),
        loss_fn=loss_fn,
        task="sequence_classification",
        cfg=cfg,
        seed=0,
        group_by_length=False,
        evaluate=lambda: {"eval_loss": evals[state["step"]]},
        progress=Progress(total_steps(len(data), cfg), enabled=False),
    )
    session = Session(
        setup=setup, eval_collate=None, eval_batch_size=1, num_labels=None, config=_Config(), out=out
    )  # type: ignore[arg-type]
    real_log = setup.log

    def log(record: dict[str, object]) -> None:  # the loop logs each step before evaluating it
        state["step"] = int(record["step"])  # type: ignore[call-overload]
        real_log(record)

    setup.log = log
    return session


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
    train_with_signals(session, None, lambda _: None)
    assert _best(tmp_path) == {"checkpoint": "step-0000006", "metric": "eval_loss", "value": 0.4}


def test_a_worse_evaluation_after_a_resume_does_not_move_the_best(tmp_path: Path) -> None:
    evals = {2: 0.3, 4: 0.5, 6: 0.4}
    first = _session(tmp_path, _cfg(4, eval_steps=2, save_steps=2), evals)
    train_with_signals(first, None, lambda _: None)
    assert _best(tmp_path)["checkpoint"] == "step-0000002"

    resumed = _session(tmp_path, _cfg(6, eval_steps=2, save_steps=2), evals)
    state = resume_state(resumed, True, lambda _: None)
    assert state.step == 4 and resumed.best_value == 0.3
    state = train_with_signals(resumed, state, lambda _: None)
    assert state.step == 6
    assert _best(tmp_path) == {"checkpoint": "step-0000002", "metric": "eval_loss", "value": 0.3}
    assert (tmp_path / "checkpoints" / "step-0000006").is_dir()
