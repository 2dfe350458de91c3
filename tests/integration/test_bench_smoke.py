"""`llmft bench --suite ci`: the benchmark's reduced form runs end to end and reports every field.

Tiny models and a few steps: the figures are not meaningful here (no speed ratio is asserted), only
that each contender ran in its own process and was measured completely and sanely.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.cli_process import HANG_GUARD_S

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

REPO = Path(__file__).resolve().parents[2]
HAS_TRL = importlib.util.find_spec("trl") is not None


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, shared_data_dir: Path) -> dict:
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmft.cli.main",
            "bench",
            "--suite",
            "ci",
            "--out",
            str(out),
            "--no-cli-timing",
            "--peak-seconds",
            "0.5",
            "--timeout",
            str(HANG_GUARD_S // 4),  # each of the contenders: together within the guard
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    if not HAS_TRL:
        assert "trl is not installed" in done.stderr
    return json.loads((out / "bench.json").read_text())


def test_every_contender_has_every_field_with_sane_values(report: dict) -> None:
    from llmft.bench.report import REQUIRED, problems

    assert problems(report) == []
    (scenario,) = report["scenarios"]
    expected = {"llmft", "hf", "trl"} if HAS_TRL else {"llmft", "hf"}
    assert set(scenario["contenders"]) == expected
    for name, contender in scenario["contenders"].items():
        median = contender["median"]
        assert set(REQUIRED) <= set(median), name
        assert median["real_tokens_per_second"] > 0
        assert median["seconds_per_step"] > 0
        assert median["time_to_first_step_s"] > 0
        assert 50 < median["peak_rss_mb"] < 16_000
        assert 0 < median["mfu"] < 1.5
        assert math.isfinite(median["eval_loss"]) and median["eval_loss"] > 0
        assert contender["rounds_ok"] == 1 and contender["errors"] == []


def test_all_contenders_trained_the_same_tokens(report: dict) -> None:
    (scenario,) = report["scenarios"]
    seen = {name: c["median"]["all_real_tokens"] for name, c in scenario["contenders"].items()}
    assert len(set(seen.values())) == 1, seen
    assert set(seen.values()) == {scenario["stats"]["real_tokens"]}


def test_ratios_and_machine_facts_are_reported(report: dict) -> None:
    (scenario,) = report["scenarios"]
    assert set(scenario["llmft_ratio_to"]) == set(scenario["contenders"]) - {"llmft"}
    for ratio in scenario["llmft_ratio_to"].values():
        assert ratio["tokens_per_second"] > 0 and math.isfinite(ratio["eval_loss_rel_diff"])
    assert report["machine"]["peak_gflops"] > 0
    assert report["machine"]["threads"] == 2
