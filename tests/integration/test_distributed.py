"""Training on 2 processes (torchrun, gloo, 1 thread each) through `llmft train --nproc 2`, as a user runs it.

2 processes with gradient_accumulation_steps 1 make the steps of 1 process with accumulation 2 (the same
global batch): the same per-step losses and final adapter weights, for causal LM with packing and for
classification. A run SIGKILLed after a checkpoint resumes on the other number of processes with the
losses of the uninterrupted run; a killed worker ends the run naming its rank; SIGTERM to the launcher
checkpoints and exits 143; rank 0 alone writes the run directory, metrics and progress.

The runs train with SGD: two processes sum their gradients in another order than one, and Adam would
amplify that last-bit difference to ~lr per step on weights whose gradient is near zero; SGD keeps it a
rounding difference, so the comparison can be tight and still hold on any CPU (tests/tolerances.py).

Every scenario is a real subprocess; they spend most of their time importing torch, so the module fixture
starts them all at once and the tests only read what happened.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import yaml
from safetensors.torch import load_file
from tests.integration.cli_process import HANG_GUARD_S, CliProcess
from tests.matrix import THREADS, thread_env
from tests.tolerances import LOSS_REL, SGD_WEIGHT_REL, assert_weights_alike

from llmft.train.signals import HOLD_AT_STEP, HOLD_LINE

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

REPO = Path(__file__).resolve().parents[2]
MAX_STEPS = 12
SAVE_STEPS = 3
TIMEOUT = HANG_GUARD_S  # a guard for a loaded machine; the kill bound below is asserted as promised
KILL_BOUND = 60.0


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **thread_env()}
    launched = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS")
    for key in ("LLMFT_DEBUG", "LLMFT_VERBOSE", HOLD_AT_STEP, *launched):
        env.pop(key, None)
    return {**env, **extra}


def _config(folder: Path, model: Path, train_file: Path, task: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data: dict = {"dataset": {"train_file": str(train_file)}, "tokenization": {"max_length": 64}}
    if task == "lm":
        data["packing"] = True
    config = {
        "output_dir": str(folder / "run"),
        "seed": 0,
        "data": data,
        "model": {"name_or_path": str(model), "adapter": {"type": "lora", "r": 4}},
        "training": {
            "max_steps": MAX_STEPS,
            "batch_size": 4,
            "gradient_accumulation_steps": 2,  # the 1-process run; 2 processes set 1
            "optimizer": "sgd",  # see the module's docstring
            "learning_rate": 0.05,  # SGD's step: the weights move well beyond the tolerance
            "logging_steps": 1,
            "eval_strategy": "no",
            "save_strategy": "steps",
            "save_steps": SAVE_STEPS,
            "save_total_limit": None,
            "num_threads": THREADS,
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


TWO = ["--nproc", "2", "training.gradient_accumulation_steps=1"]
FSDP = [*TWO, "training.distributed.strategy=fsdp"]
# The whole model trains, evaluated every 4 steps and by generation at the end (the gathered model on rank 0).
FULL = [
    "model.adapter.type=none",
    "training.gradient_checkpointing=true",
    "training.eval_strategy=steps",
    "training.eval_steps=4",
    "evaluation.generate.max_new_tokens=4",
    "evaluation.generate.max_rows=2",
]
DROPOUT = [*TWO, "model.adapter.dropout=0.2"]
ZERO3 = [
    *TWO,
    "training.distributed.strategy=deepspeed",
    'training.distributed.deepspeed={"zero_optimization": {"stage": 3}}',
]
ZERO2_OFFLOAD = [
    *TWO,
    "training.distributed.strategy=deepspeed",
    'training.distributed.deepspeed={"zero_optimization": '
    '{"stage": 2, "offload_optimizer": {"device": "cpu"}}}',
]


def _launch(config: Path, log: Path, *extra: str, env: dict[str, str] | None = None) -> CliProcess:
    """One `llmft train` process (a launcher with --nproc) from the repository, with these tests' env."""
    return CliProcess(config, log, *extra, env=env or _env(), cwd=REPO, timeout=TIMEOUT)


@dataclass
class Outcome:
    run_dir: Path
    rc: int | None = None
    output: str = ""
    resumed_rc: int | None = None
    resumed_output: str = ""
    exit_seconds: float | None = None  # from the kill of a worker to the launcher's exit
    left_behind: list[int] = field(default_factory=list)
    killed_rank: str = ""
    checkpoints_at_stop: list[str] = field(default_factory=list)
    logged_at_stop: int = 0


def checkpoints(run_dir: Path) -> list[str]:
    root = run_dir / "checkpoints"
    found = [p.name for p in root.glob("step-*") if (p / "COMPLETE").exists()] if root.is_dir() else []
    return sorted(found)


def last_logged(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    steps = [0]
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            steps.append(int(json.loads(line)["step"]))
        except (ValueError, KeyError):
            pass
    return max(steps)


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _final(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "eval_results.json").read_text())


def losses(run_dir: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if "loss" in r]


def _outliving(pids: list[int], grace: float = KILL_BOUND) -> list[int]:
    """The processes among ``pids`` still alive after ``grace`` seconds (returns as soon as none is)."""
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    return [p.pid for p in alive if _running(p)]


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_and_resume(outcome: Outcome, config: Path, first: list[str], then: list[str]) -> Outcome:
    """SIGKILL the launcher while its ranks wait a step after the first checkpoint (LLMFT_TEST_HOLD_AT_STEP:
    the kill cannot come after the run's end on a loaded machine), then resume with ``then``."""
    run_dir = outcome.run_dir
    hold = SAVE_STEPS + 1
    cli = _launch(config, config.parent / "killed.log", *first, env=_env(**{HOLD_AT_STEP: str(hold)}))
    pids: list[int] = []
    try:
        if cli.wait_for(lambda: cli.said(HOLD_LINE.format(step=hold))):
            pids = [p.pid for p in cli.workers()]
            cli.proc.send_signal(signal.SIGKILL)
    finally:
        outcome.rc, outcome.output = cli.finish()
    outcome.left_behind = _outliving(pids)  # the workers die with their launcher
    outcome.checkpoints_at_stop = checkpoints(run_dir)
    outcome.logged_at_stop = last_logged(run_dir)
    resumed = _launch(config, config.parent / "resumed.log", "--resume", *then)
    outcome.resumed_rc, outcome.resumed_output = resumed.finish()
    return outcome


def _kill_worker(outcome: Outcome, config: Path) -> Outcome:
    """SIGKILL rank 1's process mid-training: the launcher must end, naming it, within KILL_BOUND."""
    cli = _launch(config, config.parent / "worker.log", *TWO, "training.max_steps=100000")
    pids: list[int] = []
    try:
        if cli.wait_for(lambda: last_logged(outcome.run_dir) >= 2):
            workers = cli.workers()
            pids = [p.pid for p in workers]
            rank1 = next(p for p in workers if p.environ().get("RANK") == "1")
            outcome.killed_rank = "1"
            rank1.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            try:
                cli.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
            outcome.exit_seconds = time.monotonic() - killed
    finally:
        outcome.rc, outcome.output = cli.finish()
    outcome.left_behind = _outliving(pids)
    return outcome


def _sigterm(outcome: Outcome, config: Path) -> Outcome:
    cli = _launch(config, config.parent / "sigterm.log", *TWO, "training.max_steps=100000")
    pids: list[int] = []
    try:
        if cli.wait_for(lambda: last_logged(outcome.run_dir) >= 2):
            pids = [p.pid for p in cli.workers()]
            cli.proc.send_signal(signal.SIGTERM)
    finally:
        outcome.rc, outcome.output = cli.finish()
    outcome.left_behind = _outliving(pids)
    outcome.checkpoints_at_stop = checkpoints(outcome.run_dir)
    outcome.logged_at_stop = last_logged(outcome.run_dir)
    return outcome


# One uninterrupted run: the launch arguments after the config (the full fine-tunes add FULL).
RUNS: dict[str, list[str]] = {
    "one_lm": [],
    "two_lm": TWO,
    "one_cls": [],
    "two_cls": TWO,
    "fsdp_lm": FSDP,
    "fsdp_cls": FSDP,
    "one_full": [],
    "fsdp_full": FSDP,
    "two_dropout": DROPOUT,
    "two_diverges": [*TWO, "training.learning_rate=1e30"],  # non-finite within a few steps
    "zero3_lm": ZERO3,
    "zero2_cls": ZERO2_OFFLOAD,
    "zero3_full": ZERO3,
}
# SIGKILLed after a checkpoint, then resumed: (first launch, resumed launch).
KILLED: dict[str, tuple[list[str], list[str]]] = {
    "two_then_one": (TWO, []),
    "one_then_two": ([], TWO),
    "fsdp_then_one": (FSDP, []),
    "one_then_fsdp": ([], FSDP),
    "two_dropout_resumed": (DROPOUT, DROPOUT),
    "zero3_then_one": (ZERO3, []),
    "one_then_zero2": ([], ZERO2_OFFLOAD),
}


def scenario(kind: str, folder: Path, models: dict[str, Path], files: dict[str, Path]) -> Outcome:
    task = "cls" if kind.endswith("cls") else "lm"
    config = _config(folder, models[task], files[task], task)
    full = kind.endswith("full")
    if full:  # a full fine-tune without packing: padded batches, gradient checkpointing
        text = config.read_text().replace("packing: true", "packing: false")
        config.write_text(text.replace("type: lora", "type: none").replace("    r: 4\n", ""))
    outcome = Outcome(folder / "run")
    if kind in RUNS:
        extra = [*RUNS[kind], *(FULL if full else [])]
        outcome.rc, outcome.output = _launch(config, folder / "run.log", *extra).finish()
    elif kind in KILLED:
        _kill_and_resume(outcome, config, *KILLED[kind])
    elif kind == "worker_killed":
        _kill_worker(outcome, config)
    elif kind == "sigterm":
        _sigterm(outcome, config)
    elif kind == "bad_data":  # a row that is not JSON: every rank stops with the data error, exit 2
        bad = folder / "bad.jsonl"
        bad.write_text(files[task].read_text(encoding="utf-8") + "not json\n", encoding="utf-8")
        config.write_text(config.read_text().replace(str(files[task]), str(bad)), encoding="utf-8")
        outcome.rc, outcome.output = _launch(config, folder / "run.log", *TWO).finish()
    return outcome


# The scenarios whose timing is asserted (a kill lands mid-run; a killed worker ends the run in 60 s) start
# first; at most CONCURRENT run at once, so that 2 cores are not shared by 50 processes (a kill polled too
# late finds the run finished, and the 60 s bound measures the machine's overload, not llmft).
KINDS = ("worker_killed", "sigterm", *KILLED, *RUNS, "bad_data")
CONCURRENT = 6


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, tiny_model, synth_data) -> dict[str, Outcome]:
    models = {"lm": tiny_model("llama"), "cls": tiny_model("bert")}
    files = {"lm": synth_data("sft", rows=48)["train"], "cls": synth_data("classification", rows=48)["train"]}
    root = tmp_path_factory.mktemp("distributed")
    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        futures = {kind: pool.submit(scenario, kind, root / kind, models, files) for kind in KINDS}
        return {kind: future.result() for kind, future in futures.items()}


def assert_same_run(got_dir: Path, want_dir: Path, weights: str = "adapter_model") -> None:
    """The same steps in another summation order: losses and evaluations within LOSS_REL, the SGD-trained
    weights within SGD_WEIGHT_REL of each tensor's scale (tests/tolerances.py says why)."""
    got, want = losses(got_dir), losses(want_dir)
    assert [s for s, _ in want] == list(range(1, MAX_STEPS + 1)), want
    assert [s for s, _ in got] == [s for s, _ in want], got
    for (step, a), (_, b) in zip(got, want, strict=True):
        assert abs(a - b) <= LOSS_REL * abs(b), f"step {step}: {a} != {b}"
    want_evals = {r["step"]: r["eval_loss"] for r in _records(want_dir) if "eval_loss" in r}
    got_evals = {r["step"]: r["eval_loss"] for r in _records(got_dir) if "eval_loss" in r}
    assert got_evals.keys() == want_evals.keys()
    for step, value in want_evals.items():
        assert got_evals[step] == pytest.approx(value, rel=LOSS_REL), f"eval at step {step}"
    final, theirs_final = _final(got_dir), _final(want_dir)
    assert final.keys() == theirs_final.keys()  # generation scores too, when configured
    for key in (k for k in theirs_final if k.endswith(("_loss", "_perplexity"))):
        assert final[key] == pytest.approx(theirs_final[key], rel=LOSS_REL), key
    mine = load_file(str(got_dir / "model" / f"{weights}.safetensors"))
    theirs = load_file(str(want_dir / "model" / f"{weights}.safetensors"))
    assert_weights_alike(mine, theirs, SGD_WEIGHT_REL)


@pytest.mark.parametrize("task", ["lm", "cls"])
def test_two_processes_make_the_steps_of_one_with_the_same_global_batch(
    task: str, outcomes: dict[str, Outcome]
) -> None:
    one, two = outcomes[f"one_{task}"], outcomes[f"two_{task}"]
    assert one.rc == 0, one.output
    assert two.rc == 0, two.output
    assert "distributed: 2 processes" in two.output and "backend gloo" in two.output
    assert f"launching 2 processes on this machine, {THREADS} threads each" in two.output
    assert_same_run(two.run_dir, one.run_dir)
    if task == "lm":
        assert "packing:" in two.output
    assert json.loads((two.run_dir / "run.json").read_text())["steps"] == MAX_STEPS


def test_rank_zero_alone_writes_files_metrics_and_progress(outcomes: dict[str, Outcome]) -> None:
    one, two = outcomes["one_lm"], outcomes["two_lm"]
    folder = two.run_dir.parent
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["run"]  # one run directory
    assert sorted(p.name for p in two.run_dir.iterdir()) == sorted(p.name for p in one.run_dir.iterdir())
    steps = [json.loads(line)["step"] for line in (two.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, MAX_STEPS + 1))  # one metrics stream, each step once
    for step in range(1, MAX_STEPS + 1):  # one progress stream, not interleaved
        assert two.output.count(f"step {step}/{MAX_STEPS} ") == 1, two.output
    assert two.output.count("run directory:") == 1
    said = two.output.splitlines()
    for start in ("data: ", "task: ", "tokens[train]: ", "adapter lora", "precision: ", "trained "):
        assert sum(line.startswith(start) for line in said) == 1, two.output  # rank 0's, not rank 1's again
    assert "[rank 1]" not in two.output  # rank 1 had no error or warning of its own to say


def test_no_rank_prints_the_libraries_lines(outcomes: dict[str, Outcome]) -> None:
    """A full fine-tune with gradient checkpointing on 2 processes: transformers' "Loading weights" bar and
    its FutureWarning on every checkpointed load were printed by each rank (cli/quiet.py)."""
    run = outcomes["fsdp_full"]
    assert run.rc == 0, run.output
    assert "Loading weights" not in run.output and "Warning: " not in run.output, run.output


def test_a_killed_worker_ends_the_run_naming_its_rank(outcomes: dict[str, Outcome]) -> None:
    run = outcomes["worker_killed"]
    assert run.killed_rank == "1", run.output
    assert run.rc not in (0, None), run.output
    assert run.exit_seconds is not None and run.exit_seconds < KILL_BOUND, run.exit_seconds
    assert "error: rank 1 (pid" in run.output and "was killed by SIGKILL" in run.output, run.output
    assert "internal error" not in run.output and "Traceback" not in run.output, run.output
    assert run.left_behind == []


def test_sigterm_to_the_launcher_checkpoints_and_exits_143(outcomes: dict[str, Outcome]) -> None:
    run = outcomes["sigterm"]
    assert run.rc == 143, run.output
    assert run.output.count("SIGTERM received") == 1, run.output  # said by rank 0, not again by rank 1
    assert "Traceback" not in run.output
    assert run.checkpoints_at_stop and int(run.checkpoints_at_stop[-1].split("-")[-1]) == run.logged_at_stop
    assert run.left_behind == []


def test_a_data_error_on_every_rank_ends_the_run_with_its_exit_code(outcomes: dict[str, Outcome]) -> None:
    run = outcomes["bad_data"]
    assert run.rc == 2, run.output
    assert "is not valid JSON" in run.output and "(error LLMFT200" in run.output, run.output
    assert "exited with code 2" in run.output
    assert "Traceback" not in run.output and "internal error" not in run.output


def test_a_non_finite_loss_ends_every_rank_with_its_message(outcomes: dict[str, Outcome]) -> None:
    """The step's loss is summed over the ranks, so a non-finite value on one is seen by all: every rank
    stops after the same step with the message and the last good checkpoint, and nothing hangs."""
    run = outcomes["two_diverges"]
    assert run.rc not in (0, None), run.output
    assert run.output.count("became non-finite") == 2, run.output  # rank 0 and [rank 1], same step
    assert "the last good checkpoint is" in run.output or "no checkpoint was saved yet" in run.output
    assert "Traceback" not in run.output and "internal error" not in run.output, run.output


def test_dropout_masks_continue_exactly_after_a_resume_on_as_many_processes(
    outcomes: dict[str, Outcome],
) -> None:
    """Each rank draws dropout masks from its own stream and its state is saved (rng-rankN.pt): a 2-process
    run with LoRA dropout, SIGKILLed and resumed on 2 processes, makes the uninterrupted run's steps."""
    run, whole = outcomes["two_dropout_resumed"], outcomes["two_dropout"]
    assert whole.rc == 0, whole.output
    assert run.rc == -signal.SIGKILL, run.output
    assert run.checkpoints_at_stop and run.logged_at_stop < MAX_STEPS
    assert run.resumed_rc == 0, run.resumed_output
    assert (run.run_dir / "checkpoints" / run.checkpoints_at_stop[-1] / "rng-rank1.pt").is_file()
    assert_same_run(run.run_dir, whole.run_dir)
    pairs = zip(losses(whole.run_dir), losses(outcomes["two_lm"].run_dir))
    differs = [a != b for (_, a), (_, b) in pairs][1:]  # step 1: LoRA's B starts at 0, dropout has no effect
    assert all(differs), "dropout 0.2 changed no step's loss: the test would not see lost masks"


# ----------------------------------------------------------------------------------- FSDP (FSDP2, gloo)
@pytest.mark.parametrize("task", ["lm", "cls", "full"])
def test_fsdp_on_two_processes_makes_the_steps_of_one(task: str, outcomes: dict[str, Outcome]) -> None:
    """Sharded weights, gradients and optimizer state: the losses and the saved weights of 1 process with
    the same global batch (assert_same_run); LoRA with packing, classification, a full fine-tune."""
    one, fsdp = outcomes[f"one_{task}"], outcomes[f"fsdp_{task}"]
    assert one.rc == 0, one.output
    assert fsdp.rc == 0, fsdp.output
    assert "strategy fsdp, backend gloo" in fsdp.output
    assert re.search(r"fsdp: [1-9] modules \([\w, ]*Layer", fsdp.output), fsdp.output
    assert "each process holds 1/2 of the weights, gradients and optimizer state" in fsdp.output
    assert_same_run(fsdp.run_dir, one.run_dir, weights="model" if task == "full" else "adapter_model")
    assert sorted(p.name for p in fsdp.run_dir.iterdir()) == sorted(p.name for p in one.run_dir.iterdir())
    if task == "full":  # the gathered model is a plain transformers model
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(fsdp.run_dir / "model")
        assert sum(p.numel() for p in model.parameters()) > 0


# -------------------------------------------------------------------------- DeepSpeed ZeRO (CPU, gloo)
@pytest.mark.parametrize(
    ("kind", "baseline", "said"),
    [
        (
            "zero3_lm",
            "one_lm",
            "ZeRO stage 3; each process holds 1/2 of the weights, gradients and optimizer",
        ),
        ("zero2_cls", "one_cls", "ZeRO stage 2 with the optimizer offloaded to CPU memory"),
        ("zero3_full", "one_full", "ZeRO stage 3"),
    ],
)
def test_deepspeed_on_two_processes_makes_the_steps_of_one(
    kind: str, baseline: str, said: str, outcomes: dict[str, Outcome]
) -> None:
    """DeepSpeed's engine under llmft's loop: LoRA with packing (ZeRO-3), classification (ZeRO-2, optimizer
    offloaded), a full fine-tune (ZeRO-3). DeepSpeed also sums the squares of its clipping norm in another
    order than torch: a rounding difference of the clip factor, within the same SGD bound."""
    run, one = outcomes[kind], outcomes[baseline]
    assert one.rc == 0, one.output
    assert run.rc == 0, run.output
    assert "strategy deepspeed, backend gloo" in run.output and said in run.output
    full = kind.endswith("full")
    assert_same_run(run.run_dir, one.run_dir, weights="model" if full else "adapter_model")
    assert sorted(p.name for p in run.run_dir.iterdir()) == sorted(p.name for p in one.run_dir.iterdir())


# ------------------------------------------------------------ resume on another number of processes
RESUMES = [
    ("two_then_one", "2 → 1 processes, gradient_accumulation_steps 1 → 2"),  # DDP
    ("one_then_two", "1 → 2 processes, gradient_accumulation_steps 2 → 1"),
    ("fsdp_then_one", "2 → 1 processes"),  # checkpoints hold whole tensors, gathered from FSDP's shards
    ("one_then_fsdp", "1 → 2 processes"),  # and cut into them
    ("zero3_then_one", "2 → 1 processes"),  # gathered from ZeRO's partitions
    ("one_then_zero2", "1 → 2 processes"),  # written into them (optimizer offloaded)
]


@pytest.mark.parametrize(("kind", "said"), RESUMES)
def test_a_checkpoint_resumes_on_another_number_of_processes(
    kind: str, said: str, outcomes: dict[str, Outcome]
) -> None:
    """SIGKILLed after a checkpoint, resumed on the other world size (and strategy): the uninterrupted
    one-process run's steps and weights."""
    run = outcomes[kind]
    assert run.rc == -signal.SIGKILL, run.output
    assert run.left_behind == [], "workers outlived their SIGKILLed launcher"
    assert run.checkpoints_at_stop and run.logged_at_stop < MAX_STEPS
    assert run.resumed_rc == 0, run.resumed_output
    assert f"resume: {said}" in run.resumed_output
    assert_same_run(run.run_dir, outcomes["one_lm"].run_dir)
