"""Runs that survive: a real `llmft train` process is SIGKILLed, SIGTERMed or SIGINTed, and `--resume`
continues it so exactly that its losses and final weights equal those of a run that was never stopped.
With dropout on, the dropout masks after a resume depend on the restored RNG state, so the dropout
scenarios prove that too; `--resume PATH` restarts a finished run from an earlier checkpoint.

Every scenario is a real subprocess on a tiny model. They spend most of their time importing torch, so the
module fixture starts them all at once (one thread each) and the tests only read what happened.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from tests.integration.cli_process import HANG_GUARD_S, CliProcess
from tests.matrix import THREADS, thread_env

from llmft.train.signals import HOLD_AT_STEP, HOLD_LINE

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

REPO = Path(__file__).resolve().parents[2]
MAX_STEPS = 12
SAVE_STEPS = 3
PROCESS_TIMEOUT = (
    HANG_GUARD_S  # a guard only: a run of ~20 s on a quiet machine, many at once on a loaded one
)
# The runs wait where the test stops them (llmft's fault-injection aids), so that no poll races a run that
# may finish first on a loaded machine: after a step (until a signal), or inside a checkpoint write (until
# killed). The test waits for the line or the half-written folder the run leaves, then sends its signal.
HOLD_AFTER_CHECKPOINT = SAVE_STEPS + 1  # a step after the first checkpoint: the resume must redo it
# The second Ctrl-C lands in a checkpoint write held until the process ends: an exit within this bound did
# not wait for it (generous, so that a slow exit of a loaded machine still counts as at once).
SECOND_SIGNAL_DELAY = 20.0


@dataclass
class Outcome:
    """What one scenario did: how the stopped process ended, what was on disk then, and the resume."""

    run_dir: Path
    stopped_rc: int | None = None
    stopped_output: str = ""
    complete_at_stop: list[str] = field(default_factory=list)
    tmp_at_stop: list[str] = field(default_factory=list)
    logged_at_stop: int = 0
    resumed_rc: int | None = None
    resumed_output: str = ""
    reference: Path | None = None  # the run's first, uninterrupted pass (metrics and model), kept aside
    exit_delay: float | None = None  # seconds from the second stop signal to the process's exit


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **thread_env()}
    env.pop("LLMFT_DEBUG", None)
    env.pop("LLMFT_TEST_CHECKPOINT_DELAY", None)
    env.pop(HOLD_AT_STEP, None)
    env.update(extra)
    return env


# Dropout on (the model's own and the LoRA input's): each step's masks come from the torch RNG, which a
# resume must restore for the losses to match.
DROPOUT = {"model": {"disable_dropout": False, "adapter": {"dropout": 0.1}}}


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _write_config(folder: Path, model: Path, train_file: Path, extra: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "output_dir": str(folder / "run"),
        "seed": 0,
        "data": {"dataset": {"train_file": str(train_file)}, "tokenization": {"max_length": 64}},
        "model": {"name_or_path": str(model), "adapter": {"type": "lora", "r": 4}},
        "training": {
            "max_steps": MAX_STEPS,
            "batch_size": 4,
            "gradient_accumulation_steps": 2,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "eval_strategy": "no",
            "save_strategy": "steps",
            "save_steps": SAVE_STEPS,
            "num_threads": THREADS,
        },
    }
    _merge(config, extra or {})
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _launch(config: Path, log: Path, *extra: str, env: dict[str, str] | None = None) -> CliProcess:
    """One `llmft train` process from the repository; ``env`` replaces these tests' environment."""
    return CliProcess(config, log, *extra, env=env or _env(), cwd=REPO, timeout=PROCESS_TIMEOUT)


def complete_checkpoints(run_dir: Path) -> list[str]:
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    names = [p.name for p in root.iterdir() if p.name.startswith("step-") and (p / "COMPLETE").exists()]
    return sorted(names)


def tmp_checkpoints(run_dir: Path) -> list[str]:
    root = run_dir / "checkpoints"
    return sorted(p.name for p in root.glob(".tmp-*")) if root.is_dir() else []


def held(step: int) -> Callable[[CliProcess], bool]:
    """Whether the run said it waits after ``step`` (LLMFT_TEST_HOLD_AT_STEP): a signal then lands mid-run."""
    return lambda cli: cli.said(HOLD_LINE.format(step=step))


def step_of(name: str) -> int:
    return int(name.split("-")[-1])


def last_logged_step(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return 0
    steps = [0]
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            steps.append(int(json.loads(line)["step"]))
        except (ValueError, KeyError):
            pass  # the line being written right now
    return max(steps)


def losses(run_dir: Path) -> list[tuple[int, float]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    return [(r["step"], r["loss"]) for r in records if "loss" in r]


def _stop_and_resume(
    outcome: Outcome,
    config: Path,
    stop: Callable[[CliProcess], None],
    env: dict[str, str],
    resume: bool = True,
) -> Outcome:
    cli = _launch(config, config.parent / "stopped.log", env=env)
    try:
        stop(cli)
    finally:
        outcome.stopped_rc, outcome.stopped_output = cli.finish()
    outcome.complete_at_stop = complete_checkpoints(outcome.run_dir)
    outcome.tmp_at_stop = tmp_checkpoints(outcome.run_dir)
    outcome.logged_at_stop = last_logged_step(outcome.run_dir)
    if resume and outcome.complete_at_stop:
        resumed = _launch(config, config.parent / "resumed.log", "--resume")
        outcome.resumed_rc, outcome.resumed_output = resumed.finish()
    return outcome


def _resume_path(outcome: Outcome, config: Path) -> Outcome:
    """Train to the end (dropout on, every checkpoint kept), keep that run's metrics and model aside, then
    restart it from an earlier checkpoint with `--resume PATH`."""
    folder = config.parent
    outcome.stopped_rc, outcome.stopped_output = _launch(config, folder / "first.log").finish()
    if outcome.stopped_rc != 0:
        return outcome
    reference = folder / "reference"
    reference.mkdir()
    shutil.copy2(outcome.run_dir / "metrics.jsonl", reference / "metrics.jsonl")
    shutil.copytree(outcome.run_dir / "model", reference / "model")
    outcome.reference = reference
    outcome.complete_at_stop = complete_checkpoints(outcome.run_dir)
    earlier = outcome.run_dir / "checkpoints" / f"step-{SAVE_STEPS:07d}"
    resumed = _launch(config, folder / "resumed.log", "--resume", str(earlier))
    outcome.resumed_rc, outcome.resumed_output = resumed.finish()
    return outcome


def _second_sigint(outcome: Outcome, config: Path) -> Outcome:
    """Ctrl-C after the first checkpoint, then Ctrl-C again while the stop's checkpoint is being written
    (held open by LLMFT_TEST_CHECKPOINT_DELAY): the process must exit at once, without that checkpoint."""
    run_dir = outcome.run_dir
    # Held a step after the first checkpoint (the stop then writes one of its own, of step 4), and inside
    # that checkpoint's write until the process ends.
    held_write = f"hold:step-{HOLD_AFTER_CHECKPOINT:07d}"
    env = _env(LLMFT_TEST_CHECKPOINT_DELAY=held_write, **{HOLD_AT_STEP: str(HOLD_AFTER_CHECKPOINT)})
    cli = _launch(config, config.parent / "stopped.log", env=env)
    try:
        if cli.wait_for(lambda: held(HOLD_AFTER_CHECKPOINT)(cli)):
            cli.proc.send_signal(signal.SIGINT)
            if cli.wait_for(lambda: bool(tmp_checkpoints(run_dir))):  # the stop's checkpoint, half-written
                cli.proc.send_signal(signal.SIGINT)
                sent = time.monotonic()
                try:
                    cli.proc.wait(timeout=SECOND_SIGNAL_DELAY + 30)
                except subprocess.TimeoutExpired:
                    pass
                outcome.exit_delay = time.monotonic() - sent
    finally:
        outcome.stopped_rc, outcome.stopped_output = cli.finish()
    outcome.complete_at_stop = complete_checkpoints(run_dir)
    outcome.tmp_at_stop = tmp_checkpoints(run_dir)
    outcome.logged_at_stop = last_logged_step(run_dir)
    return outcome


def _mixture(train_file: Path) -> dict:
    """Two data sets (the same rows twice, as two sets) drawn 3:1 each epoch: the draw must resume too."""
    sets = [
        {"name": n, "dataset": {"train_file": str(train_file)}, "weight": w} for n, w in (("a", 3), ("b", 1))
    ]
    return {"data": {"dataset": None, "datasets": sets, "mixing": "weighted"}}


def scenario(kind: str, folder: Path, model: Path, train_file: Path) -> Outcome:
    extra: dict = {}
    if kind in ("dropout_kill", "resume_path"):
        extra = json.loads(json.dumps(DROPOUT))
    if kind.startswith("mixture"):
        extra = _mixture(train_file)
        kind = "baseline" if kind == "mixture_baseline" else "kill_step"
    if kind == "resume_path":  # keep every checkpoint, so that an earlier one is there to resume from
        extra["training"] = {"save_total_limit": None}
    config = _write_config(folder, model, train_file, extra)
    run_dir = folder / "run"
    outcome = Outcome(run_dir)
    if kind == "baseline":  # never stopped: its one run is recorded as the run that finished
        outcome.resumed_rc, outcome.resumed_output = _launch(config, folder / "baseline.log").finish()
        return outcome
    if kind == "resume_path":
        return _resume_path(outcome, config)
    if kind == "second_sigint":
        return _second_sigint(outcome, config)

    def second_checkpoint_half_written() -> bool:
        return any(name.startswith(f".tmp-step-{2 * SAVE_STEPS:07d}") for name in tmp_checkpoints(run_dir))

    held_after_checkpoint = _env(**{HOLD_AT_STEP: str(HOLD_AFTER_CHECKPOINT)})
    plans: dict[str, tuple[Callable[[CliProcess], bool], int, dict[str, str]]] = {
        "kill_step": (held(HOLD_AFTER_CHECKPOINT), signal.SIGKILL, held_after_checkpoint),
        "dropout_kill": (held(HOLD_AFTER_CHECKPOINT), signal.SIGKILL, held_after_checkpoint),
        "kill_checkpoint": (
            lambda _: second_checkpoint_half_written(),
            signal.SIGKILL,
            _env(LLMFT_TEST_CHECKPOINT_DELAY=f"hold:step-{2 * SAVE_STEPS:07d}"),
        ),
        "sigterm": (held(2), signal.SIGTERM, _env(**{HOLD_AT_STEP: "2"})),
        "sigint": (held(2), signal.SIGINT, _env(**{HOLD_AT_STEP: "2"})),
    }
    condition, sig, env = plans[kind]

    def stop(cli: CliProcess) -> None:
        if cli.wait_for(lambda: condition(cli)):
            cli.proc.send_signal(sig)

    # SIGINT goes the same way as SIGTERM from here on: one resume of the two is enough.
    return _stop_and_resume(outcome, config, stop, env, resume=kind != "sigint")


KINDS = (
    "baseline",
    "kill_step",
    "kill_checkpoint",
    "sigterm",
    "sigint",
    "resume_path",
    "dropout_kill",
    "second_sigint",
    "mixture_baseline",
    "mixture_kill",
)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, tiny_model, synth_data) -> dict[str, Outcome]:
    model = tiny_model("gpt2")
    train_file = synth_data("sft", rows=64)["train"]
    root = tmp_path_factory.mktemp("resilience-kill")
    with ThreadPoolExecutor(max_workers=len(KINDS)) as pool:
        futures = {kind: pool.submit(scenario, kind, root / kind, model, train_file) for kind in KINDS}
        return {kind: future.result() for kind, future in futures.items()}


def assert_same_run(resumed: Path, baseline: Path) -> None:
    """Every step logged once, losses as in the run never stopped, the same final adapter weights: to the
    bit, since a resume on the same machine replays the same arithmetic in the same order (a restored RNG,
    optimizer state and data position leave nothing else to differ; tests/tolerances.py)."""
    got, want = losses(resumed), losses(baseline)
    assert [s for s, _ in want] == list(range(1, MAX_STEPS + 1))
    assert [s for s, _ in got] == [s for s, _ in want], got
    for (step, a), (_, b) in zip(got, want, strict=True):
        assert a == b, f"step {step}: resumed loss {a} != uninterrupted {b}"
    mine = load_file(str(resumed / "model" / "adapter_model.safetensors"))
    theirs = load_file(str(baseline / "model" / "adapter_model.safetensors"))
    assert mine.keys() == theirs.keys()
    for name in theirs:
        assert torch.equal(mine[name], theirs[name]), name
    assert json.loads((resumed / "run.json").read_text())["steps"] == MAX_STEPS


def assert_resumed_from(outcome: Outcome, step: int) -> None:
    assert outcome.resumed_rc == 0, outcome.resumed_output
    assert "Traceback" not in outcome.resumed_output
    assert f"step-{step:07d} at step {step}" in outcome.resumed_output, outcome.resumed_output
    report = json.loads((outcome.run_dir / "run.json").read_text())
    assert report["resumed_from"] == str(outcome.run_dir / "checkpoints" / f"step-{step:07d}")


@pytest.fixture(scope="module")
def baseline(outcomes: dict[str, Outcome]) -> Path:
    done = outcomes["baseline"]
    assert done.resumed_rc == 0, done.resumed_output
    return done.run_dir


def test_sigkill_during_a_step_resumes_exactly(outcomes: dict[str, Outcome], baseline: Path) -> None:
    killed = outcomes["kill_step"]
    assert killed.stopped_rc == -signal.SIGKILL, killed.stopped_output
    assert killed.complete_at_stop, "killed before any checkpoint was written"
    last = step_of(killed.complete_at_stop[-1])
    assert last < killed.logged_at_stop < MAX_STEPS, "the kill should lose the steps after the checkpoint"
    assert_resumed_from(killed, last)
    assert_same_run(killed.run_dir, baseline)


def test_sigkill_with_a_weighted_mix_of_data_sets_resumes_exactly(outcomes: dict[str, Outcome]) -> None:
    killed, done = outcomes["mixture_kill"], outcomes["mixture_baseline"]
    assert done.resumed_rc == 0, done.resumed_output
    assert killed.stopped_rc == -signal.SIGKILL, killed.stopped_output
    assert killed.complete_at_stop, "killed before any checkpoint was written"
    last = step_of(killed.complete_at_stop[-1])
    assert last < killed.logged_at_stop < MAX_STEPS, "the kill should lose the steps after the checkpoint"
    assert_resumed_from(killed, last)
    assert_same_run(killed.run_dir, done.run_dir)


def test_sigkill_while_writing_a_checkpoint_resumes_from_the_previous_one(
    outcomes: dict[str, Outcome], baseline: Path
) -> None:
    killed = outcomes["kill_checkpoint"]
    assert killed.stopped_rc == -signal.SIGKILL, killed.stopped_output
    half = f".tmp-step-{2 * SAVE_STEPS:07d}"
    assert any(name.startswith(half) for name in killed.tmp_at_stop), killed.tmp_at_stop
    assert killed.complete_at_stop == [f"step-{SAVE_STEPS:07d}"]  # the half-written one is not taken
    assert_resumed_from(killed, SAVE_STEPS)
    assert_same_run(killed.run_dir, baseline)
    assert tmp_checkpoints(killed.run_dir) == [], "the killed process's temporary folder was not cleaned up"


@pytest.mark.parametrize(("kind", "name", "code"), [("sigterm", "SIGTERM", 143), ("sigint", "SIGINT", 130)])
def test_stop_signal_finishes_the_step_and_checkpoints(
    kind: str, name: str, code: int, outcomes: dict[str, Outcome], baseline: Path
) -> None:
    stopped = outcomes[kind]
    assert stopped.stopped_rc == code, stopped.stopped_output
    assert "Traceback" not in stopped.stopped_output
    assert f"{name} received" in stopped.stopped_output
    assert "--resume" in stopped.stopped_output
    # The checkpoint is of the last finished step: nothing trained is lost.
    assert stopped.complete_at_stop and step_of(stopped.complete_at_stop[-1]) == stopped.logged_at_stop
    assert stopped.logged_at_stop < MAX_STEPS
    if kind == "sigterm":  # SIGINT stops the same way; one resume of the two is enough
        assert_resumed_from(stopped, stopped.logged_at_stop)
        assert_same_run(stopped.run_dir, baseline)


def test_resume_from_an_earlier_checkpoint_of_a_finished_run(outcomes: dict[str, Outcome]) -> None:
    """`llmft train CFG --resume PATH` (the path form, not --resume-from) replays the steps after PATH
    exactly, dropout masks included."""
    run = outcomes["resume_path"]
    assert run.stopped_rc == 0, run.stopped_output
    assert run.reference is not None
    assert len(run.complete_at_stop) == MAX_STEPS // SAVE_STEPS, run.complete_at_stop
    assert_resumed_from(run, SAVE_STEPS)
    assert_same_run(run.run_dir, run.reference)


def test_sigkill_with_dropout_resumes_exactly(outcomes: dict[str, Outcome]) -> None:
    """With dropout on, the losses after the resume match only if the torch RNG state was restored."""
    killed = outcomes["dropout_kill"]
    reference = outcomes["resume_path"].reference
    assert reference is not None, outcomes["resume_path"].stopped_output
    assert killed.stopped_rc == -signal.SIGKILL, killed.stopped_output
    assert killed.complete_at_stop, "killed before any checkpoint was written"
    last = step_of(killed.complete_at_stop[-1])
    assert last < killed.logged_at_stop < MAX_STEPS, "the kill should lose the steps after the checkpoint"
    assert_resumed_from(killed, last)
    assert_same_run(killed.run_dir, reference)
    # Dropout really is on: these losses differ from those of the run without it.
    assert losses(reference) != losses(outcomes["baseline"].run_dir)


def test_second_sigint_while_checkpointing_exits_at_once(outcomes: dict[str, Outcome]) -> None:
    stopped = outcomes["second_sigint"]
    assert stopped.exit_delay is not None, f"never got to the stop's checkpoint:\n{stopped.stopped_output}"
    assert stopped.stopped_rc == 130, stopped.stopped_output
    assert stopped.exit_delay < SECOND_SIGNAL_DELAY, stopped.exit_delay  # did not wait for the write
    assert "SIGINT received" in stopped.stopped_output
    assert "second stop signal: exiting without a checkpoint" in stopped.stopped_output, (
        stopped.stopped_output
    )
    assert "Traceback" not in stopped.stopped_output
    # The checkpoint written before the stop is intact and loadable; the one cut short is not complete.
    first = f"step-{SAVE_STEPS:07d}"
    assert stopped.complete_at_stop == [first], stopped.complete_at_stop
    folder = stopped.run_dir / "checkpoints" / first
    assert load_file(str(folder / "trainable.safetensors"))
    assert json.loads((folder / "state.json").read_text())["step"] == SAVE_STEPS
