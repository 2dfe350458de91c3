"""A damaged checkpoint is not a bug report: `llmft train CONFIG --resume` skips a newest checkpoint whose
files no longer match its manifest (truncated, zeroed, deleted) for the newest intact one and says so in
one line; with none intact it says what is damaged and how to start over. A resume of a finished run says
it is finished, and every hint repeats the overrides the run was started with.

The runs go through the CLI entry point in-process, as in test_resilience_misc.py (whose helpers these are).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.test_resilience_misc import (
    STEPS,
    assert_clean_failure,
    snapshot,
    train_cli,
    write_config,
)

from llmft import run_dir
from llmft.config.load import load_config
from llmft.pipeline import run
from llmft.train.integrity import damage


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, synth_data, tiny_model) -> tuple[Path, Path]:
    """(config, run dir) of a finished run with checkpoints at steps 3 and 6; tests copy the run dir."""
    root = tmp_path_factory.mktemp("damaged")
    cfg = write_config(
        root / "run.yaml", root / "run", synth_data("sft", rows=48)["train"], tiny_model("gpt2")
    )
    run(load_config(cfg), say=lambda _: None, progress=False)
    return cfg, root / "run"


def killed_copy(source: Path, out: Path) -> Path:
    """The run as a kill after its last checkpoint leaves it: checkpoints and metrics, no model."""
    shutil.copytree(source, out)
    shutil.rmtree(out / run_dir.MODEL)
    (out / run_dir.RECORD).unlink()
    return out


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def zero(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


DAMAGES: dict[str, tuple[Callable[[Path], None], Callable[[int], str]]] = {
    "truncated": (truncate, lambda size: f"size differs, 100 bytes instead of {size}"),
    "zeroed": (zero, lambda size: "checksum differs, same size but other content"),
    "missing": (Path.unlink, lambda size: "missing"),
}


@pytest.mark.parametrize("how", DAMAGES)
def test_resume_skips_a_damaged_newest_checkpoint_for_the_previous_one(
    finished: tuple[Path, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str], how: str
) -> None:
    cfg, source = finished
    out = killed_copy(source, tmp_path / "run")
    newest = out / "checkpoints" / f"step-{STEPS:07d}"
    weights = newest / run_dir.WEIGHTS
    size = weights.stat().st_size
    spoil, problem = DAMAGES[how]
    spoil(weights)

    code, output = train_cli(capfd, cfg, f"output_dir={out}", "--resume")

    assert code == 0, output
    skipped = [line for line in output.splitlines() if line.startswith("resume: skipping")]
    assert skipped == [
        f"resume: skipping damaged checkpoint {newest} (trainable.safetensors: {problem(size)}); "
        "resuming from step-0000003, the newest intact checkpoint"
    ], output
    assert f"resumed from {out / 'checkpoints' / 'step-0000003'} at step 3" in output, output
    assert re.search(
        rf"^trained {STEPS - 3} steps in [0-9.]+ (s|min) after resuming at step 3$", output, re.M
    ), output
    assert damage(newest) == [] and (out / run_dir.MODEL).is_dir()  # written again, whole


def test_resume_with_no_intact_checkpoint_says_what_is_damaged_and_how_to_start_over(
    finished: tuple[Path, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg, source = finished
    out = killed_copy(source, tmp_path / "run")
    (out / "checkpoints" / "step-0000006" / run_dir.OPTIMIZER).unlink()
    zero(out / "checkpoints" / "step-0000003" / run_dir.WEIGHTS)
    before = snapshot(out)

    code, output = train_cli(capfd, cfg, f"output_dir={out}", "--resume")

    assert_clean_failure(code, output, expected_code=1)
    assert (
        f"error: {out / 'checkpoints'}: no intact checkpoint to resume from, every one is damaged: "
        "step-0000006 (optimizer.pt: missing), "
        "step-0000003 (trainable.safetensors: checksum differs, same size but other content)\n"
        f"Fix: start over with `llmft train {cfg} output_dir={out} --overwrite` (it replaces the run), "
        f"or delete {out} and train again\n(error LLMFT600" in output
    ), output
    assert snapshot(out) == before, "a refused resume changed the run dir"


def test_resume_of_a_finished_run_says_it_is_finished_and_changes_nothing(
    finished: tuple[Path, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg, source = finished
    out = tmp_path / "run"
    shutil.copytree(source, out)
    before = snapshot(out)

    code, output = train_cli(capfd, cfg, f"output_dir={out}", "--resume")

    assert code == 0, output
    assert (
        f"resume: the run in {out} already finished at step {STEPS} and saved its model: there is nothing "
        f"left to train. To train further, add a higher training.max_steps (now {STEPS}) to "
        f"`llmft train {cfg} output_dir={out} --resume`; to start over, run "
        f"`llmft train {cfg} output_dir={out} --overwrite`\n" in output
    ), output
    assert "trained" not in output and f"run directory: {out}" in output, output
    assert snapshot(out) == before, "the resume of a finished run changed it"


def test_the_hint_to_resume_repeats_the_overrides(
    finished: tuple[Path, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without them it would resume the config's own output_dir: another run."""
    cfg, source = finished
    out = tmp_path / "run"
    shutil.copytree(source, out)

    code, output = train_cli(capfd, cfg, f"output_dir={out}", "training.logging_steps=2")

    assert_clean_failure(code, output, expected_code=2)
    assert (
        f"Fix: resume it with `llmft train {cfg} output_dir={out} training.logging_steps=2 --resume`, "
        f"start over with `llmft train {cfg} output_dir={out} training.logging_steps=2 --overwrite`"
    ) in output, output
