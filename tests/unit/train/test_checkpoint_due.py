"""When a checkpoint is due: by strategy, and by the clock (save_every_minutes) unless saving is off."""

from __future__ import annotations

import pytest

from llmft.config.schema import TrainingConfig
from llmft.train.loop import checkpoint_due


@pytest.mark.parametrize(
    ("settings", "step", "end_of_epoch", "minutes", "due"),
    [
        ({}, 5, False, 1.0, False),  # default: epoch ends and every 30 minutes
        ({}, 5, True, 1.0, True),
        ({}, 5, False, 30.0, True),
        ({"save_steps": 4}, 4, False, 0.0, True),  # save_steps alone: the steps strategy
        ({"save_steps": 4}, 5, True, 0.0, False),
        ({"save_steps": 4}, 5, False, 31.0, True),  # the clock runs under `steps` too
        ({"save_every_minutes": None}, 5, False, 1e9, False),
        ({"save_strategy": "no"}, 4, True, 1e9, False),
    ],
)
def test_checkpoint_due(
    settings: dict[str, object], step: int, end_of_epoch: bool, minutes: float, due: bool
) -> None:
    assert checkpoint_due(TrainingConfig(**settings), step, end_of_epoch, minutes) is due


def test_eval_steps_alone_means_the_steps_strategy_and_a_contradiction_is_refused() -> None:
    assert TrainingConfig(eval_steps=10).eval_strategy == "steps"
    assert TrainingConfig(save_steps=10).save_strategy == "steps"
    with pytest.raises(ValueError, match="eval_steps is set but eval_strategy is `epoch`"):
        TrainingConfig(eval_steps=10, eval_strategy="epoch")
