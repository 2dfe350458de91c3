"""A run file that cannot be written (permission denied, disk full) is a clear error naming the file, the
reason and the last good checkpoint, never an internal error; a half-written temporary file is removed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from llmft import atomic
from llmft.errors import CheckpointError
from llmft.train import artifacts


def _denied(*args: object) -> None:
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(args[-1]))


def test_a_denied_write_names_the_file_the_reason_and_that_no_checkpoint_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(atomic.os, "replace", _denied)
    with pytest.raises(CheckpointError) as caught:
        artifacts.write_json(tmp_path / "run.json", {"a": 1})
    message = caught.value.render()
    assert str(tmp_path / "run.json") in message and "Permission denied (EACCES)" in message, message
    assert "no checkpoint was saved yet" in message, message
    assert list(tmp_path.iterdir()) == [], "the temporary file was left behind"


def test_a_failed_config_write_names_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "checkpoints" / "step-0000004"
    good.mkdir(parents=True)
    (good / "COMPLETE").write_text("ok\n")
    monkeypatch.setattr(atomic.os, "replace", _denied)
    with pytest.raises(CheckpointError) as caught:
        artifacts.write_config(tmp_path / "config.yaml", {"seed": 0}, command="llmft train run.yaml")
    message = caught.value.render()
    assert f"the last good checkpoint is {good}" in message, message
    assert "`llmft train run.yaml --resume`" in message, message


def test_a_per_step_log_keeps_only_the_lines_up_to_the_resumed_checkpoint(tmp_path: Path) -> None:
    """metrics.jsonl and rollouts.jsonl after a kill: lines of later steps and a line cut short go."""
    log = tmp_path / "rollouts.jsonl"
    log.write_text('{"step": 1, "completion": "a"}\n{"step": 3, "completion": "b"}\n'
                   '{"step": 5, "completion": "c"}\n{"step": 5, "compl', encoding="utf-8")  # fmt: skip
    artifacts.truncate_after(log, 3)
    kept = log.read_text(encoding="utf-8")
    assert kept == '{"step": 1, "completion": "a"}\n{"step": 3, "completion": "b"}\n'
    artifacts.truncate_after(tmp_path / "absent.jsonl", 3)  # no file: nothing to do
    assert not (tmp_path / "absent.jsonl").exists()
