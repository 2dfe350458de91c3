"""Ray Tune on a local Ray: the legacy `ray_tune` block as written, 4 trials 2 at a time under ASHA.

Runs `llmft hpo` in a subprocess on the repository's legacy config (tests/data/legacy_configs), with only
the model and data pointed at a tiny GPT-2 and synthetic SFT rows, and a short schedule.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.integration.cli_process import HANG_GUARD_S

pytest.importorskip("ray.tune")

REPO = Path(__file__).resolve().parents[2]


def overlap(a: dict, b: dict) -> bool:
    return a["started"] < b["finished"] and b["started"] < a["finished"]


def test_legacy_ray_tune_config_runs_four_trials_two_at_a_time_with_asha(
    tiny_model, synth_data, tmp_path: Path
) -> None:  # noqa: ANN001
    legacy = json.loads((REPO / "tests" / "data" / "legacy_configs" / "ray_tune_search.json").read_text())
    files = synth_data("sft", rows=64)
    legacy["data"]["dataset"] = {
        "dir": str(files["train"].parent),
        "train_file": "train.jsonl",
        "validation_file": "validation.jsonl",
        "dataset_format": "jsonl",
    }
    legacy["model"]["name_or_path"] = str(tiny_model("gpt2"))
    config = tmp_path / "ray_tune_search.json"
    config.write_text(json.dumps(legacy))
    out = tmp_path / "ray_search"
    overrides = [
        f"output_dir={out}",
        "hpo.max_trials=4",
        "data.tokenization.max_length=64",
        "training.eval_strategy=steps",
        "training.eval_steps=2",
        "training.logging_steps=2",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "CUDA_VISIBLE_DEVICES": "",
        "RAY_AUTH_MODE": "disabled",
    }
    done = subprocess.run(
        [sys.executable, "-m", "llmft.cli.main", "hpo", str(config), *overrides, "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    results = json.loads((out / "hpo_results.json").read_text())
    assert (results["backend"], results["metric"], results["direction"]) == ("ray", "eval_loss", "minimize")
    trials = results["trials"]
    assert sorted(t["number"] for t in trials) == [0, 1, 2, 3]
    states = {t["state"] for t in trials}
    assert states <= {"complete", "pruned"} and "complete" in states
    for t in trials:  # the legacy space, read as written
        p = t["params"]
        assert 1e-5 <= p["training.learning_rate"] <= 1e-3 and p["model.adapter.r"] in (4, 8, 16)
        assert 0.0 <= p["training.warmup_ratio"] <= 0.1
        assert (out / "trials" / f"{t['number']:03d}" / "trial.json").exists()
    # 2 at a time: some trials overlap, never 3 at once
    assert any(overlap(a, b) for a in trials for b in trials if a is not b)
    assert not any(
        overlap(a, b) and overlap(b, c) and overlap(a, c)
        for a in trials
        for b in trials
        for c in trials
        if len({id(a), id(b), id(c)}) == 3
    )
    # the same outputs as the other backends
    assert {"hpo_results.csv", "best_config.yaml", "trials"} <= {p.name for p in out.iterdir()}
    best = yaml.safe_load((out / "best_config.yaml").read_text(encoding="utf-8"))
    assert best["hpo"]["enabled"] is False and best["output_dir"] == str(out / "best")
    assert best["training"]["learning_rate"] == results["best_params"]["training.learning_rate"]
