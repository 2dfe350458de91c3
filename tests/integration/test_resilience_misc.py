"""Runs that survive, besides kills: resume config and data checks, no silent overwrite, non-finite losses,
pickle weights, secrets, a full disk, an unwritable output dir and config-relative paths.

`llmft train` runs in-process through the CLI entry point (`llmft.cli.main.main`, exit codes and messages
as a user sees them) on a tiny GPT-2; the kill and signal tests in test_resilience_kill.py use real
subprocesses. Every failure is checked for a plain message without a traceback.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from tests.matrix import THREADS

from llmft.cli.main import main
from llmft.config.load import load_config
from llmft.errors import CheckpointError
from llmft.pipeline import run
from llmft.train import checkpoint as ckpt

STEPS = 6


@pytest.fixture(scope="module", autouse=True)
def _keep_torch_threads() -> Iterator[None]:
    """The runs set torch's thread count (training.num_threads: 1); give the rest of the session its own."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def train_cli(capfd: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """`llmft train ARGS` in-process; returns the exit code and everything printed (stdout + stderr)."""
    import logging

    # `datasets` logs to the sys.stderr of the moment its handler was made (an earlier test's capture).
    for handler in logging.getLogger("datasets").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stderr
    capfd.readouterr()
    code = main(["train", *map(str, args)])
    out, err = capfd.readouterr()
    return code, out + err


def assert_clean_failure(code: int, output: str, expected_code: int | None = None) -> None:
    assert code != 0, output
    if expected_code is not None:
        assert code == expected_code, output
    assert "Traceback" not in output, output
    assert "internal error" not in output, output


def write_config(
    path: Path, output_dir: str | Path, train_file: str | Path, model: str | Path, **sections: object
) -> Path:
    """A small causal-LM LoRA run; ``sections`` extend the top-level sections (or replace other keys)."""
    config: dict[str, object] = {
        "seed": 0,
        "output_dir": str(output_dir),
        "data": {"dataset": {"train_file": str(train_file)}, "tokenization": {"max_length": 64}},
        "model": {"name_or_path": str(model), "adapter": {"type": "lora", "r": 4}},
        "training": {
            "max_steps": STEPS,
            "batch_size": 4,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "eval_strategy": "no",
            "save_strategy": "steps",
            "save_steps": 3,
            "num_threads": THREADS,
        },
    }
    for key, value in sections.items():
        section = config.get(key)
        config[key] = {**section, **value} if isinstance(section, dict) and isinstance(value, dict) else value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(synth_data) -> dict[str, Path]:
    return synth_data("sft", rows=48)


@pytest.fixture(scope="module")
def gpt2(tiny_model) -> Path:
    return tiny_model("gpt2")


@pytest.fixture
def config(tmp_path: Path, files: dict[str, Path], gpt2: Path) -> Path:
    return write_config(tmp_path / "run.yaml", tmp_path / "run", files["train"], gpt2)


@pytest.fixture(scope="module")
def finished(
    tmp_path_factory: pytest.TempPathFactory, files: dict[str, Path], gpt2: Path
) -> tuple[Path, Path]:
    """(config, run dir) of a finished run with checkpoints at steps 3 and 6; tests copy the run dir."""
    root = tmp_path_factory.mktemp("finished")
    cfg = write_config(root / "run.yaml", root / "run", files["train"], gpt2)
    run(load_config(cfg), say=lambda _: None, progress=False)
    assert ckpt.latest_checkpoint(root / "run") == root / "run" / "checkpoints" / f"step-{STEPS:07d}"
    return cfg, root / "run"


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------------ no silent overwrite
def test_an_earlier_run_is_never_overwritten_silently(
    finished: tuple[Path, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg, source = finished
    complete, partial = tmp_path / "complete", tmp_path / "partial"
    shutil.copytree(source, complete)
    shutil.copytree(source, partial)
    shutil.rmtree(partial / "model")  # what a killed run leaves: checkpoints and metrics, no model
    (partial / "run.json").unlink()
    for out in (complete, partial):
        before = snapshot(out)
        code, output = train_cli(capfd, cfg, f"output_dir={out}")
        assert_clean_failure(code, output, expected_code=2)
        assert "already holds a run" in output and "--resume" in output and "--overwrite" in output, output
        assert snapshot(out) == before, "a refused run changed the output dir"


# ------------------------------------------------------------------------------ resume config checks
def test_resume_refuses_changes_that_alter_the_run_and_names_them(
    finished: tuple[Path, Path], tmp_path: Path, synth_data, gpt2: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg, source = finished
    out = tmp_path / "run"
    shutil.copytree(source, out)
    other_model = shutil.copytree(gpt2, tmp_path / "other-gpt2")
    other_data = synth_data("sft", rows=48, seed=1)["train"]
    before = snapshot(out)

    code, output = train_cli(
        capfd,
        cfg,
        "--resume",
        f"output_dir={out}",
        "training.learning_rate=0.01",
        "training.batch_size=2",
        f"model.name_or_path={other_model}",
        f"data.dataset.train_file={other_data}",
    )

    assert_clean_failure(code, output)
    assert "cannot resume exactly" in output, output
    refused = output.split("cannot resume exactly")[1].split("Fix:")[0]
    for key in [
        "training.learning_rate",
        "training.batch_size",
        "model.name_or_path",
        "data.dataset.train_file",
    ]:
        assert key in refused, f"{key} not named in:\n{output}"
    assert "output_dir" not in refused, "output_dir may change"
    assert snapshot(out) == before, "a refused resume changed the run dir"


def test_resume_allows_safe_changes_and_reports_them(
    finished: tuple[Path, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg, source = finished
    out = tmp_path / "run"
    shutil.copytree(source, out)
    longer = STEPS + 3

    with (out / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 7, "epoch": 0, "lo')  # a line that a kill cut short
    changes = [
        "training.logging_steps=2",
        "training.eval_strategy=steps",
        "training.eval_steps=2",
        f"training.max_steps={longer}",
    ]

    code, output = train_cli(capfd, cfg, "--resume", f"output_dir={out}", *changes)

    assert code == 0, output
    for change in changes:
        assert f"allowed config change {change.split('=')[0]}" in output, output
    assert f"step-{STEPS:07d} at step {STEPS}" in output, output
    assert json.loads((out / "run.json").read_text())["steps"] == longer
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [*range(1, STEPS + 1), STEPS + 2, longer]
    assert any("eval_loss" in r and r["step"] == STEPS + 2 for r in records)


def test_resume_from_a_folder_that_is_no_checkpoint_is_refused_before_loading(
    finished: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, source = finished
    out = tmp_path / "run"
    shutil.copytree(source, out)
    (out / "checkpoints" / "step-0000006" / "COMPLETE").unlink()  # as if killed while being written
    config = load_config(cfg, [f"output_dir={out}"])

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data was loaded before the resume point was checked")

    monkeypatch.setattr("llmft.data.build.prepare_rows", no_loading)
    for where in (out / "checkpoints" / "step-0000006", tmp_path / "nowhere"):
        with pytest.raises(CheckpointError, match="is not a complete checkpoint") as caught:
            run(config, say=lambda _: None, progress=False, resume=str(where))
        assert "step-0000003" in caught.value.render(), "the message should list the complete ones"


# ------------------------------------------------------------------------------ resume data check
def _edit_one_row(path: Path, index: int = 5) -> None:
    """Change one answer in place: same path and config, other rows (a typo fixed after a crash)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[index])
    row["output"] = f"{row['output']} (edited)"
    lines[index] = json.dumps(row)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def test_resume_refuses_changed_data_before_loading_the_model(
    tmp_path: Path,
    files: dict[str, Path],
    gpt2: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    train = Path(shutil.copy(files["train"], tmp_path / "train.jsonl"))
    original = train.read_bytes()
    out = tmp_path / "run"
    cfg = write_config(tmp_path / "run.yaml", out, train, gpt2, training={"max_steps": 3})
    run(load_config(cfg), say=lambda _: None, progress=False)  # one checkpoint, at step 3
    saved = json.loads((out / "checkpoints" / "step-0000003" / "state.json").read_text())["data_fingerprint"]
    assert saved == json.loads((out / "run.json").read_text())["data_fingerprint"]

    _edit_one_row(train)
    before = snapshot(out)

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr("llmft.models.load.load_model_config", no_model)
    monkeypatch.setattr("llmft.models.load.load_model", no_model)
    code, output = train_cli(capfd, cfg, "--resume", f"training.max_steps={STEPS}")

    assert_clean_failure(code, output, expected_code=2)
    assert "training data changed since the checkpoint" in output and saved[:8] in output, output
    assert "restore the data" in output and "--overwrite" in output and "LLMFT200" in output, output
    assert snapshot(out) == before, "a refused resume changed the run dir"

    train.write_bytes(original)  # the fix: the data as it was; the same rows resume
    monkeypatch.undo()
    code, output = train_cli(capfd, cfg, "--resume", f"training.max_steps={STEPS}")

    assert code == 0, output
    assert "step-0000003 at step 3" in output and "data fingerprint" not in output, output
    assert json.loads((out / "run.json").read_text())["steps"] == STEPS


# --------------------------------------------------------------------------------- non-finite losses
def _poison_loss(monkeypatch: pytest.MonkeyPatch, batches: set[int]) -> None:
    """A NaN in the training loss of the given (1-based) batches, as fp16 overflow on a long batch gives."""
    from dataclasses import replace

    from llmft.train import parts as parts_module

    real = parts_module.build_objective

    def build_objective(module, ctx):  # noqa: ANN001, ANN202
        objective, calls = real(module, ctx), [0]
        inner = objective.loss

        def loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
            total, count = inner(model, batch)
            if model.training:
                calls[0] += 1
                if calls[0] in batches:
                    total = total * float("nan")
            return total, count

        return replace(objective, loss=loss)

    monkeypatch.setattr(parts_module, "build_objective", build_objective)


def test_a_non_finite_loss_stops_with_the_step_and_the_last_good_checkpoint(
    config: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    code, output = train_cli(capfd, config, "-q", "training.learning_rate=1e8", "training.max_grad_norm=null")
    assert_clean_failure(code, output, expected_code=1)
    assert "non-finite" in output and re.search(r"\bstep \d+\b", output), output
    assert "nan_policy" in output, "the message should say how to skip such batches"
    assert "last good checkpoint is" in output or "no checkpoint was saved yet" in output, output

    _poison_loss(monkeypatch, {5})  # after the checkpoint of step 3
    code, output = train_cli(capfd, config, "-q", "--overwrite")
    assert_clean_failure(code, output, expected_code=1)
    assert "loss became non-finite (nan) at step 5" in output, output
    last = config.parent / "run" / "checkpoints" / "step-0000003"
    assert f"the last good checkpoint is {last}" in output, output


def test_skip_policy_gives_up_when_every_batch_diverges(
    config: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, output = train_cli(
        capfd,
        config,
        "-q",
        "training.learning_rate=1e8",
        "training.max_grad_norm=null",
        "training.nan_policy=skip",
    )
    assert_clean_failure(code, output, expected_code=1)
    assert re.search(r"\d+ non-finite losses skipped by step \d+: training has diverged", output), output


def test_skip_policy_skips_non_finite_batches_and_counts_them(
    config: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Some batches give a NaN loss (as fp16 overflow on one long batch would): the run skips those
    updates, trains on, and run.json counts the skips. A NaN is injected into the loss of batches 2 and 5."""
    poisoned = {2, 5}
    _poison_loss(monkeypatch, poisoned)
    code, output = train_cli(capfd, config, "-q", "training.nan_policy=skip")

    assert code == 0, output
    report = json.loads((config.parent / "run" / "run.json").read_text())
    assert report["skipped_nonfinite_steps"] == len(poisoned)
    assert report["steps"] == STEPS
    weights = load_file(str(config.parent / "run" / "model" / "adapter_model.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values()), "a skipped batch still changed the weights"


# ------------------------------------------------------------------------------- pickle and secrets
def test_pickle_weights_need_allow_pickle_and_secrets_never_reach_a_file(
    config: Path, gpt2: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pickled = shutil.copytree(gpt2, tmp_path / "gpt2-bin")
    torch.save(load_file(str(pickled / "model.safetensors")), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    secrets = ["hf_token=hf_SECRET123", "tracking.api_key=SECRET456"]

    code, refused = train_cli(capfd, config, f"model.name_or_path={pickled}", *secrets)
    assert_clean_failure(code, refused, expected_code=2)
    assert "allow_pickle" in refused and "pytorch_model.bin" in refused, refused

    code, output = train_cli(
        capfd, config, "--overwrite", f"model.name_or_path={pickled}", "model.allow_pickle=true", *secrets
    )
    assert code == 0, output
    out = config.parent / "run"
    assert (out / "model" / "adapter_model.safetensors").exists()
    assert list((out / "checkpoints").glob("step-*")), "the secrets check should cover checkpoints too"
    for secret in ("SECRET123", "SECRET456"):
        assert secret not in refused + output
        leaks = [str(p) for p in out.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
        assert not leaks, f"{secret} written to {leaks}"


def test_a_malformed_secret_is_not_repeated_in_the_error(
    config: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # An unquoted all-digit key is a YAML number, not a string: the error must not print it.
    code, output = train_cli(capfd, config, "hf_token=98765432123", "tracking.api_key=[SECRET456]")
    assert_clean_failure(code, output, expected_code=2)
    assert "hf_token" in output and "tracking.api_key" in output, output
    assert "98765432123" not in output and "SECRET456" not in output, output


# ------------------------------------------------------------------------------------- a full disk
def _fail_second_checkpoint(
    monkeypatch: pytest.MonkeyPatch, before_write: Callable[[Path], None] | None = None
) -> None:
    """Make the second checkpoint fail: raise ENOSPC, or (``before_write``) fill the disk and write."""
    real, calls = ckpt._write_files, [0]

    def write_files(folder: Path, parts: dict[str, object]) -> None:
        calls[0] += 1
        if calls[0] == 2:
            if before_write is None:
                (folder / "trainable.safetensors").write_bytes(b"partial")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / "optimizer.pt"))
            before_write(folder)
        real(folder, parts)

    monkeypatch.setattr(ckpt, "_write_files", write_files)


def _check_disk_full_and_resume(
    config: Path, out: Path, err: CheckpointError, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = err.render()
    assert "No space left on device" in message and "ENOSPC" in message, message
    assert "step 6" in message and "step-0000003" in message, "no word of the last good checkpoint"
    assert ckpt.complete_checkpoints(out / "checkpoints") == [out / "checkpoints" / "step-0000003"]
    assert not list((out / "checkpoints").glob(".tmp-*")), "the failed checkpoint's folder was left over"
    monkeypatch.undo()  # the disk has room again
    result = run(load_config(config), say=lambda _: None, progress=False, resume=True)
    assert [s for s, _ in result.train_losses][-3:] == [4, 5, 6]
    assert json.loads((out / "run.json").read_text())["steps"] == STEPS


def test_disk_full_during_a_checkpoint_keeps_the_previous_one_resumable(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_second_checkpoint(monkeypatch)
    with pytest.raises(CheckpointError) as caught:
        run(load_config(config), say=lambda _: None, progress=False)
    _check_disk_full_and_resume(config, config.parent / "run", caught.value, monkeypatch)


def _check_write_failure(code: int, output: str, what: str, last: str) -> None:
    """The clean error of a write that failed outside a checkpoint: what, why, and where to resume from."""
    assert_clean_failure(code, output, expected_code=1)
    assert f"could not write {what}" in output, output
    assert "No space left on device (ENOSPC)" in output and "LLMFT600" in output, output
    assert f"the last good checkpoint is {last}" in output and "--resume" in output, output


def test_disk_full_writing_the_final_model_names_the_last_good_checkpoint(
    config: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import peft

    def disk_full(self: object, path: str, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(Path(path) / "adapter_model.safetensors"))

    monkeypatch.setattr(peft.PeftModel, "save_pretrained", disk_full)
    code, output = train_cli(capfd, config, "-q")

    out = config.parent / "run"
    _check_write_failure(code, output, "the final model", str(out / "checkpoints" / f"step-{STEPS:07d}"))
    assert ckpt.latest_checkpoint(out) == out / "checkpoints" / f"step-{STEPS:07d}"
    monkeypatch.undo()  # the disk has room again: the resume only evaluates and saves
    code, output = train_cli(capfd, config, "-q", "--resume")
    assert code == 0, output
    assert (out / "model" / "adapter_model.safetensors").exists()
    assert json.loads((out / "run.json").read_text())["steps"] == STEPS


class _DiskFullOnWrite:
    """A file handle whose write stores half the text, then fails as a full disk does."""

    def __init__(self, handle: object) -> None:
        self.handle = handle

    def __enter__(self) -> _DiskFullOnWrite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()  # type: ignore[attr-defined]

    def write(self, text: str) -> int:
        self.handle.write(text[: len(text) // 2])  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_appending_metrics_names_the_last_good_checkpoint(
    config: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    real_open, appends = Path.open, [0]

    def open_(self: Path, mode: str = "r", *args: object, **kwargs: object):  # noqa: ANN202
        handle = real_open(self, mode, *args, **kwargs)  # type: ignore[arg-type]
        if self.name == "metrics.jsonl" and "a" in mode:
            appends[0] += 1
            if appends[0] == 5:  # the line of step 5 (one per step), after the checkpoint of step 3
                return _DiskFullOnWrite(handle)
        return handle

    monkeypatch.setattr(Path, "open", open_)
    code, output = train_cli(capfd, config, "-q")

    out = config.parent / "run"
    _check_write_failure(
        code, output, f"{out / 'metrics.jsonl'} (step 5)", str(out / "checkpoints" / "step-0000003")
    )
    monkeypatch.undo()
    code, output = train_cli(capfd, config, "-q", "--resume")
    assert code == 0, output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1)), "the cut-short line was kept"


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs, to make the disk really full; only where this process may mount (root)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_is_reported_as_such(
    small_tmpfs: Path, files: dict[str, Path], gpt2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch and safetensors report a failed write in their own exception types ("unexpected pos 576 vs
    534"); the error must still say the disk is full. The disk is filled just before the second checkpoint,
    leaving room for its first file but not for the optimizer state."""
    out = small_tmpfs / "run"
    config = write_config(small_tmpfs.parent / "run.yaml", out, files["train"], gpt2)
    filler = small_tmpfs / "filler"

    def fill(folder: Path) -> None:
        room = (out / "checkpoints" / "step-0000003" / "trainable.safetensors").stat().st_size + 8192
        filler.write_bytes(b"\0" * max(shutil.disk_usage(small_tmpfs).free - room, 0))

    _fail_second_checkpoint(monkeypatch, before_write=fill)
    with pytest.raises(CheckpointError) as caught:
        run(load_config(config), say=lambda _: None, progress=False)
    filler.unlink()
    _check_disk_full_and_resume(config, out, caught.value, monkeypatch)


# --------------------------------------------------------------------------- unwritable output dir
def test_an_unwritable_output_dir_fails_before_training(
    config: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    out = config.parent / "run"
    out.mkdir()
    if os.geteuid() == 0:
        # root writes through any permission bits: make the pre-flight write probe fail as chmod 0o500 would.
        real = tempfile.NamedTemporaryFile

        def probe(*args: object, **kwargs: object):  # noqa: ANN202
            if kwargs.get("dir") is not None and Path(str(kwargs["dir"])) == out:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(out))
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(tempfile, "NamedTemporaryFile", probe)
    else:
        out.chmod(0o500)
    try:
        code, output = train_cli(capfd, config, "-q")
    finally:
        out.chmod(0o700)
    assert_clean_failure(code, output)
    assert "cannot write to the output dir" in output and "Permission denied" in output, output
    assert not (out / "metrics.jsonl").exists() and not (out / "checkpoints").exists(), "training started"


def test_an_output_dir_that_cannot_be_created_is_a_clear_error(
    config: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, output = train_cli(capfd, config, "-q", f"output_dir={blocker / 'run'}")
    assert_clean_failure(code, output, expected_code=2)
    assert "cannot create the output dir" in output and str(blocker / "run") in output, output


# ------------------------------------------------------------------------------ config-relative paths
def test_paths_in_the_config_are_relative_to_the_config_file(
    tmp_path: Path,
    files: dict[str, Path],
    gpt2: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    project = tmp_path / "project"
    shutil.copytree(files["train"].parent, project / "data")
    shutil.copytree(gpt2, project / "models" / "gpt2")
    write_config(
        project / "configs" / "run.yaml",
        "../runs/first",
        "../data/train.jsonl",
        "../models/gpt2",
        training={"max_steps": 2, "save_strategy": "no", "save_steps": None},
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    code, output = train_cli(capfd, "../project/configs/run.yaml", "-q")

    assert code == 0, output
    assert (project / "runs" / "first" / "model" / "adapter_model.safetensors").exists()
    assert list(elsewhere.iterdir()) == [], "nothing should be written relative to the working directory"
    saved = yaml.safe_load((project / "runs" / "first" / "config.yaml").read_text())
    assert saved["data"]["dataset"]["train_file"] == str((project / "data" / "train.jsonl").resolve())
    assert saved["model"]["name_or_path"] == str((project / "models" / "gpt2").resolve())
