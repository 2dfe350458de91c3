"""Optimizer groups and learning-rate schedules."""

from __future__ import annotations

import math

import pytest
import torch

from llmft.config.schema import TrainingConfig
from llmft.train.optim import build_optimizer, build_scheduler, lr_factor, parameter_groups, warmup_steps


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)
        self.norm = torch.nn.LayerNorm(4)


def test_no_weight_decay_on_biases_and_norms() -> None:
    model = Tiny()
    decay, no_decay = parameter_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and decay["params"] == [model.proj.weight]
    assert no_decay["weight_decay"] == 0.0
    assert {id(p) for p in no_decay["params"]} == {
        id(model.proj.bias),
        id(model.norm.weight),
        id(model.norm.bias),
    }


@pytest.mark.parametrize("kind,mid,end", [("linear", 0.5, 0.0), ("cosine", 0.5, 0.0), ("constant", 1.0, 1.0)])
def test_schedules_after_warmup(kind: str, mid: float, end: float) -> None:
    total, warm = 110, 10
    assert lr_factor(0, total, warm, kind) == pytest.approx(0.1)
    assert lr_factor(9, total, warm, kind) == pytest.approx(1.0)
    assert lr_factor(60, total, warm, kind) == pytest.approx(mid)
    assert lr_factor(110, total, warm, kind) == pytest.approx(end, abs=1e-9)


def test_warmup_ratio_and_steps() -> None:
    assert warmup_steps(TrainingConfig(warmup_ratio=0.05), 200) == 10
    assert warmup_steps(TrainingConfig(warmup_steps=7), 200) == 7
    assert warmup_steps(TrainingConfig(), 200) == 0


def test_scheduler_drives_the_optimizer_lr() -> None:
    cfg = TrainingConfig(learning_rate=1e-3, lr_scheduler="cosine", warmup_steps=2)
    opt = build_optimizer(Tiny(), cfg)
    sched = build_scheduler(opt, cfg, total_steps=12)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(5e-4) and lrs[1] == pytest.approx(1e-3)
    assert lrs[7] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))
