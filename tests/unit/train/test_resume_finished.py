"""`--resume` of a run that already trained to its end says so (and how to train further or start over)
instead of training no steps; the hints repeat the command the run was started with, overrides included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmft.config.schema import TrainingConfig
from llmft.train.commands import overwrite_command, resume_command, train_command
from llmft.train.resume import finished_note

COMMAND = "llmft train run.yaml output_dir=runs/b"


def finished_run(out: Path, training: dict[str, object], steps: int = 6, reason: str = "completed") -> Path:
    """A run dir as a finished run leaves it (model/ and run.json are written last); returns the path of
    its last checkpoint."""
    (out / "model").mkdir(parents=True)
    record = {"steps": steps, "epochs_completed": 2, "stop_reason": reason}
    (out / "run.json").write_text(json.dumps(record))
    (out / "config.yaml").write_text(
        yaml.safe_dump({"training": {"max_steps": None, "epochs": None, **training}})
    )
    return out / "checkpoints" / f"step-{steps:07d}"


def test_a_finished_run_is_said_to_be_finished_with_how_to_go_on(tmp_path: Path) -> None:
    last = finished_run(tmp_path, {"max_steps": 6})
    note = finished_note(tmp_path, last, TrainingConfig(max_steps=6), latest=True, command=COMMAND)
    assert note == (
        f"resume: the run in {tmp_path} already finished at step 6 (2 epochs completed) and saved its model: "
        "there is nothing left to train. To train further, add a higher training.max_steps (now 6) to "
        "`llmft train run.yaml output_dir=runs/b --resume`; to start over, run "
        "`llmft train run.yaml output_dir=runs/b --overwrite`"
    )


def test_a_run_trained_by_epochs_is_told_to_raise_the_epochs(tmp_path: Path) -> None:
    last = finished_run(tmp_path, {})
    note = finished_note(tmp_path, last, TrainingConfig(), latest=True)
    assert note is not None
    assert "add a higher training.epochs (now 1) to `llmft train CONFIG --resume`" in note, note


@pytest.mark.parametrize(
    ("training", "latest", "reason", "unfinished"),
    [
        (TrainingConfig(max_steps=12), True, "completed", False),  # more steps asked for: train them
        (TrainingConfig(epochs=2), True, "completed", False),  # epochs instead of steps: another length
        (TrainingConfig(max_steps=6), False, "completed", False),  # an earlier checkpoint named: train again
        (TrainingConfig(max_steps=6), True, "early stopping: eval_loss did not improve", False),
        (TrainingConfig(max_steps=6), True, "completed", True),  # killed before its model was saved
    ],
    ids=["more-steps", "epochs-now", "earlier-checkpoint", "early-stopped", "not-finished"],
)
def test_a_resume_with_something_to_train_is_not_finished(
    tmp_path: Path, training: TrainingConfig, latest: bool, reason: str, unfinished: bool
) -> None:
    finished_run(tmp_path, {"max_steps": 6}, reason=reason)
    if unfinished:
        (tmp_path / "run.json").unlink()
    earlier = tmp_path / "checkpoints" / "step-0000003"
    assert finished_note(tmp_path, earlier, training, latest=latest) is None


def test_the_last_checkpoint_named_of_a_finished_run_is_finished_too(tmp_path: Path) -> None:
    last = finished_run(tmp_path, {"max_steps": 6})
    assert finished_note(tmp_path, last, TrainingConfig(max_steps=6), latest=False) is not None


def test_the_command_repeats_config_launch_options_and_overrides_quoted() -> None:
    command = train_command(
        "my runs/c.yaml", ["output_dir=runs/b", "data.system_prompt=Be brief."], ["--nproc", "2"]
    )
    assert (
        command == "llmft train 'my runs/c.yaml' --nproc 2 output_dir=runs/b 'data.system_prompt=Be brief.'"
    )
    assert resume_command(command) == f"{command} --resume"
    assert overwrite_command(None) == "llmft train CONFIG --overwrite"


def test_a_secret_override_is_masked_in_the_command_but_a_pad_token_is_not() -> None:
    command = train_command("c.yaml", ["hf_token=hf_abc", "data.tokenization.pad_token=<pad>"])
    assert command == "llmft train c.yaml 'hf_token=***REDACTED***' 'data.tokenization.pad_token=<pad>'"


def test_the_cli_command_keeps_the_launch_options_given() -> None:
    from llmft.cli.train import _launch_options

    assert _launch_options(None, 1, 0, None, None, None) == []
    assert _launch_options(2, 2, 1, "h:29400", None, None) == [
        "--nproc",
        "2",
        "--nnodes",
        "2",
        "--node-rank",
        "1",
        "--rdzv-endpoint",
        "h:29400",
    ]
