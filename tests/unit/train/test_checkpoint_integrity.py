"""A checkpoint records each file's size and sha256 (manifest.json); `--resume` checks the one it picks:
a damaged newest checkpoint is named and skipped for the newest intact one, a damaged one the user named is
refused, none intact is a clear error. Checkpoints from before manifests still resume, unchecked."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from tests.unit.train.tiny_checkpoint import write

from llmft import run_dir
from llmft.errors import CheckpointError
from llmft.train import checkpoint as ckpt
from llmft.train.integrity import Damage, damage
from llmft.train.resume import find_checkpoint


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def zero(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


DAMAGES = {
    "truncated": (truncate, lambda size: f"size differs, {size // 2} bytes instead of {size}"),
    "zeroed": (zero, lambda size: "checksum differs, same size but other content"),
    "missing": (Path.unlink, lambda size: "missing"),
}


def test_the_manifest_lists_every_file_with_its_size_and_sha256(tmp_path: Path) -> None:
    folder = write(tmp_path, 3, rank_rngs=[ckpt.rng_state_bytes()])  # a second process's random state
    manifest = json.loads((folder / run_dir.MANIFEST).read_text())
    on_disk = {p.name for p in folder.iterdir()} - {run_dir.MANIFEST, run_dir.COMPLETE}
    assert manifest["algorithm"] == "sha256"
    assert set(manifest["files"]) == on_disk
    assert {run_dir.WEIGHTS, run_dir.OPTIMIZER, run_dir.STATE, run_dir.rank_rng(1)} <= on_disk
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert (folder / run_dir.COMPLETE).read_text() == f"ok\n{run_dir.MANIFEST}\n"
    assert damage(folder) == []


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", [run_dir.WEIGHTS, run_dir.OPTIMIZER, run_dir.STATE])
def test_each_damage_is_named_with_its_file(tmp_path: Path, how: str, name: str) -> None:
    folder = write(tmp_path, 3)
    size = (folder / name).stat().st_size
    spoil, problem = DAMAGES[how]
    spoil(folder / name)
    assert damage(folder) == [Damage(name, problem(size))]


def test_a_lost_or_garbled_manifest_is_damage_too(tmp_path: Path) -> None:
    folder = write(tmp_path, 3)
    (folder / run_dir.MANIFEST).write_text('{"files": [1, 2]}')
    assert damage(folder) == [Damage(run_dir.MANIFEST, "unreadable, not the listing that was written")]
    (folder / run_dir.MANIFEST).unlink()
    assert damage(folder) == [Damage(run_dir.MANIFEST, "missing")]


def as_older(folder: Path) -> None:
    """What a checkpoint written before manifests looks like."""
    (folder / run_dir.MANIFEST).unlink()
    (folder / run_dir.COMPLETE).write_text("ok\n")


def test_a_checkpoint_from_before_manifests_resumes_unchecked(tmp_path: Path) -> None:
    folder = write(tmp_path, 3)
    as_older(folder)
    said: list[str] = []
    assert damage(folder) == []
    assert find_checkpoint(tmp_path, True, said.append) == folder
    assert said == []


def test_reading_a_damaged_older_checkpoint_names_the_file(tmp_path: Path) -> None:
    """Without a manifest nothing is checked before loading; the load itself then says what is damaged
    (it used to end as an internal error from safetensors)."""
    folder = write(tmp_path, 3)
    as_older(folder)
    truncate(folder / run_dir.WEIGHTS)
    with pytest.raises(CheckpointError) as caught:
        ckpt.read_checkpoint(folder)
    message = caught.value.render()
    assert message.startswith(f"{folder}: the checkpoint's {run_dir.WEIGHTS} cannot be read (SafetensorError")
    assert "the checkpoint is damaged" in message and "--overwrite" in message, message


@pytest.mark.parametrize("how", DAMAGES)
def test_resume_skips_a_damaged_newest_checkpoint_and_says_so_in_one_line(tmp_path: Path, how: str) -> None:
    older, newest = write(tmp_path, 3), write(tmp_path, 6)
    size = (newest / run_dir.WEIGHTS).stat().st_size
    spoil, problem = DAMAGES[how]
    spoil(newest / run_dir.WEIGHTS)
    said: list[str] = []
    assert find_checkpoint(tmp_path, True, said.append) == older
    assert said == [
        f"resume: skipping damaged checkpoint {newest} (trainable.safetensors: {problem(size)}); "
        "resuming from step-0000003, the newest intact checkpoint"
    ]


def test_resume_skips_several_damaged_checkpoints_in_one_line(tmp_path: Path) -> None:
    first, second, third = write(tmp_path, 2), write(tmp_path, 4), write(tmp_path, 6)
    (third / run_dir.OPTIMIZER).unlink()
    zero(second / run_dir.STATE)
    said: list[str] = []
    assert find_checkpoint(tmp_path, True, said.append) == first
    assert said == [
        f"resume: skipping damaged checkpoints {third} (optimizer.pt: missing) and {second} (state.json: "
        "checksum differs, same size but other content); resuming from step-0000002, the newest intact "
        "checkpoint"
    ]


def test_resume_with_every_checkpoint_damaged_says_what_and_how_to_start_over(tmp_path: Path) -> None:
    older, newest = write(tmp_path, 3), write(tmp_path, 6)
    (newest / run_dir.WEIGHTS).unlink()
    size = (older / run_dir.OPTIMIZER).stat().st_size
    truncate(older / run_dir.OPTIMIZER)
    with pytest.raises(CheckpointError) as caught:
        find_checkpoint(tmp_path, True, command="llmft train run.yaml output_dir=runs/b")
    assert caught.value.exit_code == 1
    assert caught.value.render() == (
        f"{tmp_path / 'checkpoints'}: no intact checkpoint to resume from, every one is damaged: "
        "step-0000006 (trainable.safetensors: missing), "
        f"step-0000003 (optimizer.pt: size differs, {size // 2} bytes instead of {size})\n"
        "Fix: start over with `llmft train run.yaml output_dir=runs/b --overwrite` (it replaces the run), "
        f"or delete {tmp_path} and train again"
    )


def test_a_damaged_checkpoint_named_with_resume_path_is_refused_not_replaced(tmp_path: Path) -> None:
    older, newest = write(tmp_path, 3), write(tmp_path, 6)
    zero(newest / run_dir.SCHEDULER)
    with pytest.raises(CheckpointError) as caught:
        find_checkpoint(tmp_path, str(newest))
    assert caught.value.render() == (
        f"{newest}: the checkpoint is damaged: scheduler.pt: checksum differs, same size but other content\n"
        "Fix: resume from another checkpoint with `--resume PATH`, or with --resume alone from the newest "
        "intact one"
    )
    assert find_checkpoint(tmp_path, str(older)) == older


def test_pruning_and_the_best_marker_are_unchanged_by_manifests(tmp_path: Path) -> None:
    first = write(tmp_path, 1)
    ckpt.mark_best(tmp_path, first, "eval_loss", 0.5)
    for step in (2, 3, 4):
        folder = write(tmp_path, step)
        ckpt.prune_checkpoints(tmp_path / "checkpoints", keep=2)
    names = [p.name for p in ckpt.complete_checkpoints(tmp_path / "checkpoints")]
    assert names == ["step-0000001", "step-0000003", "step-0000004"]
    assert ckpt.read_best(tmp_path) == ("eval_loss", 1, 0.5)
    assert all(damage(tmp_path / "checkpoints" / name) == [] for name in names)
    assert folder.name == "step-0000004"
