"""Checkpoints record the data fingerprint: a resume on other rows is refused, and a checkpoint written
before the fingerprint was saved still loads (its data simply cannot be checked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llmft.errors import DataError
from llmft.train import checkpoint as ckpt
from llmft.train.loop import LoopState
from llmft.train.resume import check_resume_data

SAVED, OTHER = "a" * 16, "b" * 16


def parts() -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    return model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


def write(out: Path, fingerprint: str) -> Path:
    model, opt, sched = parts()
    return ckpt.save_checkpoint(
        out,
        model=model,
        optimizer=opt,
        scheduler=sched,
        state=LoopState(step=3),
        config_yaml="seed: 0\n",
        keep=None,
        data_fingerprint=fingerprint,
    )


def test_changed_rows_are_refused_with_both_fingerprints(tmp_path: Path) -> None:
    folder = write(tmp_path, SAVED)
    assert ckpt.saved_data_fingerprint(folder) == SAVED
    assert check_resume_data(folder, SAVED) is None

    with pytest.raises(DataError) as caught:
        check_resume_data(folder, OTHER)

    message = caught.value.render()
    assert caught.value.exit_code == 2
    assert "training data changed" in message and "aaaaaaaa → bbbbbbbb" in message, message
    assert str(folder) in message and "restore the data" in message and "--overwrite" in message, message


@pytest.mark.parametrize("older", [False, True], ids=["with-fingerprint", "older-without"])
def test_checkpoints_load_with_or_without_the_fingerprint(tmp_path: Path, older: bool) -> None:
    folder = write(tmp_path, SAVED)
    if older:
        state_file = folder / "state.json"
        state = json.loads(state_file.read_text())
        del state["data_fingerprint"]
        state_file.write_text(json.dumps(state))
        notice = check_resume_data(folder, OTHER)
        assert notice is not None and notice.startswith("resume:") and "\n" not in notice

    model, opt, sched = parts()
    assert ckpt.load_checkpoint(folder, model=model, optimizer=opt, scheduler=sched).step == 3


def test_an_edited_checkpoint_config_is_refused_before_it_is_compared(tmp_path: Path) -> None:
    """state.json records the hash of the checkpoint's config.yaml: an edited copy (to sneak a changed
    learning rate past the change check) is caught, while the untouched one compares as usual."""
    from llmft.errors import CheckpointError
    from llmft.train.resume import check_resume_config

    folder = write(tmp_path, SAVED)
    assert check_resume_config(folder, {"seed": 0}) == []
    (folder / "config.yaml").write_text("seed: 1\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="config.yaml was changed after the checkpoint was written"):
        check_resume_config(folder, {"seed": 1})
