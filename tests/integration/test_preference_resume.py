"""DPO survives SIGKILL: a real `llmft train` process is killed mid-run and `--resume` continues it with the
per-step losses of a run that was never stopped, with the reference as the base model with the adapter
disabled, and with the reference log-probs precomputed (the resumed run reads them back from the cache)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from tests.integration.cli_process import HANG_GUARD_S
from tests.matrix import THREADS, thread_env

from llmft.train.signals import HOLD_AT_STEP, HOLD_LINE

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

REPO = Path(__file__).resolve().parents[2]
MAX_STEPS, SAVE_STEPS, TIMEOUT = 10, 3, HANG_GUARD_S  # the timeout: a guard for a loaded machine
SCENARIOS = {  # name → (model.adapter.type, precompute_reference, killed)
    "lora": ("lora", False, False),
    "lora_killed": ("lora", False, True),
    "precomputed": ("none", True, False),
    "precomputed_killed": ("none", True, True),
}


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **thread_env()}
    env.pop("LLMFT_TEST_CHECKPOINT_DELAY", None)
    env.pop(HOLD_AT_STEP, None)
    return env


def _config(folder: Path, model: Path, train_file: Path, adapter: str, precompute: bool) -> Path:
    folder.mkdir(parents=True)
    config = {
        "output_dir": str(folder / "run"),
        "data": {"dataset": {"train_file": str(train_file)}, "tokenization": {"max_length": 64}},
        "model": {"name_or_path": str(model), "adapter": {"type": adapter}},
        "training": {
            "max_steps": MAX_STEPS,
            "batch_size": 4,
            "gradient_accumulation_steps": 2,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "eval_strategy": "no",
            "save_steps": SAVE_STEPS,
            "num_threads": THREADS,
            "objective": "dpo",
            "preference": {"precompute_reference": precompute},
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _checkpoints(run_dir: Path) -> list[str]:
    root = run_dir / "checkpoints"
    return sorted(p.name for p in root.glob("step-*") if (p / "COMPLETE").exists()) if root.is_dir() else []


def _train(config: Path, log: Path, *extra: str, kill_after_checkpoint: bool = False) -> str:
    """Run to the end, or, with ``kill_after_checkpoint``, SIGKILL the run while it waits a step after its
    first checkpoint (LLMFT_TEST_HOLD_AT_STEP: the kill cannot come too late on a loaded machine)."""
    env = {**_env(), HOLD_AT_STEP: str(SAVE_STEPS + 1)} if kill_after_checkpoint else _env()
    with log.open("w", encoding="utf-8") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmft.cli.main", "train", str(config), *extra],
            stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )  # fmt: skip
        deadline = time.monotonic() + TIMEOUT
        held = HOLD_LINE.format(step=SAVE_STEPS + 1)
        while kill_after_checkpoint and proc.poll() is None and time.monotonic() < deadline:
            if held in log.read_text(encoding="utf-8", errors="replace"):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        try:
            proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return log.read_text(encoding="utf-8", errors="replace")


def _scenario(name: str, root: Path, model: Path, train_file: Path) -> dict[str, object]:
    adapter, precompute, killed = SCENARIOS[name]
    config = _config(root / name, model, train_file, adapter, precompute)
    first = _train(config, config.parent / "first.log", kill_after_checkpoint=killed)
    out: dict[str, object] = {"first": first, "checkpoints": _checkpoints(config.parent / "run")}
    if killed:
        out["resumed"] = _train(config, config.parent / "resumed.log", "--resume")
    lines = (config.parent / "run" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    out["losses"] = [(r["step"], r["loss"]) for r in map(json.loads, lines) if "loss" in r]
    return out


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory, tiny_model, synth_data
) -> dict[str, dict[str, object]]:
    model, train_file = tiny_model("llama"), synth_data("preference", rows=80)["train"]
    root = tmp_path_factory.mktemp("preference-resume")
    with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
        futures = {name: pool.submit(_scenario, name, root, model, train_file) for name in SCENARIOS}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("kind", ["lora", "precomputed"])
def test_dpo_resumed_after_sigkill_has_the_losses_of_an_uninterrupted_run(outcomes, kind: str) -> None:
    baseline, killed = outcomes[kind], outcomes[f"{kind}_killed"]
    assert "Traceback" not in str(killed["first"]) and killed["checkpoints"], killed["first"]
    assert "resumed from" in str(killed["resumed"]), killed["resumed"]
    want, got = baseline["losses"], killed["losses"]
    assert [s for s, _ in want] == list(range(1, MAX_STEPS + 1)), baseline["first"]
    assert [s for s, _ in got] == [s for s, _ in want]
    for (step, a), (_, b) in zip(got, want, strict=True):  # type: ignore[misc]
        assert a == b, f"step {step}: resumed {a} != uninterrupted {b}"  # a replay: to the bit


def test_precomputed_reference_is_computed_once_and_read_back_by_the_resumed_run(outcomes) -> None:
    texts = [str(outcomes["precomputed"]["first"]), str(outcomes["precomputed_killed"]["first"])]
    assert any("reference log-probs precomputed, cached in" in t for t in texts), texts
    assert "reference log-probs read from" in str(outcomes["precomputed_killed"]["resumed"])
    assert "reference: the model before training" in texts[0]
    assert "reference: the base model (adapter disabled" in str(outcomes["lora"]["first"])
