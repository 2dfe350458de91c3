"""`llmft train CONFIG --resume [PATH]`: the argv rewrite that gives `--resume` its optional value."""

from __future__ import annotations

import pytest

from llmft.cli.main import rewrite_resume

CKPT = "runs/x/checkpoints/step-0000003"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # --resume alone stays the flag: before/after the config, before an option or an override
        (["train", "c.yaml", "--resume"], ["train", "c.yaml", "--resume"]),
        (["train", "--resume", "c.yaml"], ["train", "--resume", "c.yaml"]),
        (["train", "--resume", "c.yml", "a.b=1"], ["train", "--resume", "c.yml", "a.b=1"]),
        (["train", "--resume", "c.json"], ["train", "--resume", "c.json"]),
        (["train", "c.yaml", "--resume", "--quiet"], ["train", "c.yaml", "--resume", "--quiet"]),
        (["train", "c.yaml", "--resume", "-q"], ["train", "c.yaml", "--resume", "-q"]),
        (["train", "c.yaml", "--resume", "seed=1"], ["train", "c.yaml", "--resume", "seed=1"]),
        # --resume PATH and --resume=PATH become --resume-from PATH
        (["train", "c.yaml", "--resume", CKPT], ["train", "c.yaml", "--resume-from", CKPT]),
        (["train", "c.yaml", f"--resume={CKPT}"], ["train", "c.yaml", "--resume-from", CKPT]),
        (["train", "--resume", CKPT, "c.yaml", "-q"], ["train", "--resume-from", CKPT, "c.yaml", "-q"]),
        (
            ["--debug", "train", "c.yaml", "--resume", CKPT],
            ["--debug", "train", "c.yaml", "--resume-from", CKPT],
        ),
        # --resume-from is left as it is
        (["train", "c.yaml", "--resume-from", CKPT], ["train", "c.yaml", "--resume-from", CKPT]),
        # other commands, and anything after `--`, are not touched
        (["validate", "c.yaml", "--resume", CKPT], ["validate", "c.yaml", "--resume", CKPT]),
        (["hpo", "train", "--resume", CKPT], ["hpo", "train", "--resume", CKPT]),
        (["train", "c.yaml", "--", "--resume", CKPT], ["train", "c.yaml", "--", "--resume", CKPT]),
        ([], []),
        (["--version"], ["--version"]),
    ],
)
def test_rewrite_resume(argv: list[str], expected: list[str]) -> None:
    assert rewrite_resume(argv) == expected


def test_resume_path_reaches_the_checkpoint_check(tmp_path, capsys) -> None:
    """End to end through the CLI parser: the path is taken as the checkpoint (not as an override), and a
    folder that is no checkpoint is refused as such, before anything is trained."""
    from llmft.cli.main import main

    config = tmp_path / "c.yaml"
    config.write_text(
        "output_dir: " + str(tmp_path / "run") + "\n"
        "data: {dataset: {train_file: " + str(tmp_path / "train.jsonl") + "}}\n"
        "model: {name_or_path: sshleifer/tiny-gpt2}\n",
        encoding="utf-8",
    )
    (tmp_path / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n', encoding="utf-8")
    missing = tmp_path / "run" / "checkpoints" / "step-0000003"
    for argv in (
        ["train", str(config), "--resume", str(missing)],
        ["train", str(config), f"--resume={missing}"],
    ):
        code = main(argv)
        err = capsys.readouterr().err
        assert code != 0
        assert "not of the form" not in err, err
        assert "not a complete checkpoint" in err, err
