"""Checkpoints exist when a run needs them: `save_steps` alone writes them, a contradiction is an error, and
save_every_minutes leaves a checkpoint that `--resume` continues from even when no epoch ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmft.cli.main import main
from llmft.config.load import load_config
from llmft.errors import ConfigError


def _config(tmp_path: Path, tiny_model, synth_data, training: dict[str, object]) -> Path:  # noqa: ANN001
    files = synth_data("sft", rows=64)
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "output_dir": str(tmp_path / "run"),
                "data": {
                    "dataset": {"train_file": str(files["train"])},
                    "tokenization": {"max_length": 64},
                },
                "model": {"name_or_path": str(tiny_model("gpt2")), "adapter": {"type": "lora", "r": 4}},
                "training": {"batch_size": 4, "learning_rate": 1e-3, "eval_strategy": "no", **training},
            }
        ),
        encoding="utf-8",
    )
    return path


def _checkpoints(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("step-*"))


def test_save_steps_alone_writes_checkpoints(tiny_model, synth_data, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    config = _config(
        tmp_path, tiny_model, synth_data, {"max_steps": 4, "save_steps": 2, "save_total_limit": 5}
    )
    assert main(["train", str(config), "-q"]) == 0, capsys.readouterr().err
    assert _checkpoints(tmp_path / "run") == ["step-0000002", "step-0000004"]


def test_save_strategy_no_with_save_steps_is_an_error_with_a_fix(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    config = tmp_path / "c.yaml"
    config.write_text(
        "data: {dataset: {train_file: t.jsonl}}\nmodel: {name_or_path: m}\n"
        "training: {save_strategy: 'no', save_steps: 500}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError):
        load_config(str(config), [])
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr()
    text = err.out + err.err
    assert "save_steps is set but save_strategy is `no`" in text, text
    assert "delete `save_strategy: no`" in text, text


def test_by_default_a_run_checkpoints_at_each_epoch_end(
    tiny_model, synth_data, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    config = _config(tmp_path, tiny_model, synth_data, {"epochs": 2, "batch_size": 32})
    assert main(["train", str(config), "-q"]) == 0, capsys.readouterr().err
    steps_per_epoch = json.loads((tmp_path / "run" / "run.json").read_text())["steps"] // 2
    assert _checkpoints(tmp_path / "run") == [
        f"step-{steps_per_epoch:07d}",
        f"step-{2 * steps_per_epoch:07d}",
    ]


def test_a_run_longer_than_save_every_minutes_leaves_a_checkpoint_to_resume_from(
    tiny_model,
    synth_data,
    tmp_path: Path,
    capsys,  # noqa: ANN001
) -> None:
    """No epoch ends in 3 steps (64 rows, batch 4), and save_steps is not set: only the clock saves."""
    config = _config(tmp_path, tiny_model, synth_data, {"max_steps": 3, "save_every_minutes": 1e-6})
    assert main(["train", str(config), "-q"]) == 0, capsys.readouterr().err
    run = tmp_path / "run"
    assert "step-0000003" in _checkpoints(run)

    code = main(["train", str(config), "--resume", "training.max_steps=5"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"resumed from {run / 'checkpoints' / 'step-0000003'} at step 3" in err, err
    assert json.loads((run / "run.json").read_text())["steps"] == 5


def test_save_strategy_no_writes_no_checkpoint(tiny_model, synth_data, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    config = _config(
        tmp_path, tiny_model, synth_data, {"max_steps": 3, "save_strategy": "no", "save_every_minutes": 1e-6}
    )
    assert main(["train", str(config), "-q"]) == 0, capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoints").exists()
