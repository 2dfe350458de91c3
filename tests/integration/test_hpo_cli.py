"""`llmft hpo` as a user runs it: real subprocesses, a study killed and resumed, two processes sharing one.

The trials are tiny (80 training rows, 10 steps of batch 8) so the processes spend their time where it
matters here: in the study's database.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml
from tests.integration.cli_process import HANG_GUARD_S
from tests.matrix import THREADS

REPO = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "CUDA_VISIBLE_DEVICES": ""}


def hpo_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmft.cli.main", "hpo", *args]


def write_config(tmp_path: Path, tiny_model, synth_data, output_dir: Path, hpo: dict) -> Path:  # noqa: ANN001
    files = synth_data("classification", rows=100)
    config = {
        "output_dir": str(output_dir),
        "data": {
            "dataset": {"train_file": str(files["train"]), "validation_file": str(files["validation"])},
            "tokenization": {"max_length": 64},
        },
        "model": {"name_or_path": str(tiny_model("bert")), "adapter": {"r": 4}},
        "training": {
            "max_steps": 10,
            "batch_size": 8,
            "eval_strategy": "steps",
            "eval_steps": 5,
            "num_threads": THREADS,
        },
        "hpo": {
            "backend": "optuna",
            "metric": "eval_loss",
            "pruner": "none",
            "max_trials": 4,
            "parameters": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}},
            **hpo,
        },
    }
    path = tmp_path / f"{output_dir.parent.name}-{output_dir.name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def study_trials(db: Path) -> list[tuple[int, str]]:
    """(number, state) of every trial in an Optuna SQLite file, read without optuna."""
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        try:
            rows = conn.execute("SELECT number, state FROM trials ORDER BY number")
            return [(int(n), str(s)) for n, s in rows]
        except sqlite3.OperationalError:  # tables not created yet
            return []


def mid_trial(out: Path, finished: int) -> bool:
    """At least ``finished`` trials complete, and the next one training (its trial directory started)."""
    trials = study_trials(out / "hpo.db")
    running = [n for n, s in trials if s == "RUNNING"]
    done = sum(s == "COMPLETE" for _, s in trials)
    return done >= finished and any((out / "trials" / f"{n:03d}" / "trial.json").exists() for n in running)


def test_a_killed_study_resumes_without_rerunning_finished_trials(
    tiny_model, synth_data, tmp_path: Path
) -> None:  # noqa: ANN001
    out = tmp_path / "study"
    config = write_config(tmp_path, tiny_model, synth_data, out, {})
    proc = subprocess.Popen(
        hpo_cli(str(config), "--quiet"),
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not mid_trial(out, finished=2):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.time() < deadline, "two trials did not finish in time"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = study_trials(out / "hpo.db")
    finished = {n for n, s in killed_at if s == "COMPLETE"}
    stamps = {n: (out / "trials" / f"{n:03d}" / "trial.json").stat().st_mtime_ns for n in finished}
    assert 2 <= len(finished) < 4

    resumed = subprocess.run(hpo_cli(str(config), "--quiet"), env=env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr

    results = json.loads((out / "hpo_results.json").read_text())
    assert [t["state"] for t in results["trials"]] == ["complete"] * 4
    numbers = [t["number"] for t in results["trials"]]
    assert len(set(numbers)) == 4 and finished <= set(numbers)
    for n, stamp in stamps.items():  # finished trials were not run again
        assert (out / "trials" / f"{n:03d}" / "trial.json").stat().st_mtime_ns == stamp
    interrupted = [n for n, s in killed_at if s == "RUNNING"]
    assert len(interrupted) == 1  # killed mid-trial
    final = dict(study_trials(out / "hpo.db"))
    assert final[interrupted[0]] == "FAIL"  # the killed trial: failed, and its values run again
    assert len(final) == 5 and interrupted[0] not in numbers
    assert (out / "best_config.yaml").exists()


def test_two_processes_share_one_study_through_its_storage_url(
    tiny_model, synth_data, tmp_path: Path
) -> None:  # noqa: ANN001
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    outs = [tmp_path / "machine-a" / "search", tmp_path / "machine-b" / "search"]
    configs = [write_config(tmp_path, tiny_model, synth_data, out, {"storage": storage}) for out in outs]
    procs = [
        subprocess.Popen(
            hpo_cli(str(c), "--quiet"),
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in configs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=HANG_GUARD_S)
        assert proc.returncode == 0, err

    trials = study_trials(tmp_path / "shared.db")
    assert len(trials) == len({n for n, _ in trials})  # no trial number twice
    assert sum(s in ("COMPLETE", "PRUNED") for _, s in trials) == 4  # together they ran max_trials
    ran = [{int(p.name) for p in (out / "trials").iterdir()} for out in outs if (out / "trials").exists()]
    assert sum(len(r) for r in ran) >= 4
    assert not set.intersection(*ran) if len(ran) == 2 else True  # each number ran on one machine
    for out in outs:  # each process reports the whole study
        results = json.loads((out / "hpo_results.json").read_text())
        complete = sorted(n for n, s in trials if s == "COMPLETE")
        assert sorted(t["number"] for t in results["trials"]) == complete


def test_train_with_hpo_enabled_runs_the_search(tiny_model, synth_data, tmp_path: Path) -> None:  # noqa: ANN001
    """`llmft train CONFIG` with `hpo.enabled: true` searches instead of training once (the legacy configs'
    way of asking for a search)."""
    out = tmp_path / "search" / "run"
    config = write_config(tmp_path, tiny_model, synth_data, out, {"backend": "random", "max_trials": 2})
    train = [sys.executable, "-m", "llmft.cli.main", "train", str(config), "hpo.enabled=true", "--quiet"]
    proc = subprocess.run(train, env=env(), capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "hpo_results.json").read_text())
    assert [t["state"] for t in results["trials"]] == ["complete"] * 2
    assert (out / "best_config.yaml").exists()
    assert not (out / "model").exists()  # no single training run was made beside the search
