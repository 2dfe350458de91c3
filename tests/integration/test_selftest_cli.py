"""`llmft selftest` passes on this install, stage by stage, and fails loudly when a stage breaks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.cli_process import HANG_GUARD_S

from llmft.selftest import run_selftest

REPO = Path(__file__).resolve().parents[2]


def test_selftest_passes_every_stage() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "llmft.cli.main", "selftest"],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for stage in ("data", "tokenize", "train", "evaluate", "reload"):
        assert f"PASS  {stage}" in proc.stdout
    assert "selftest passed in" in proc.stdout


def test_a_failing_stage_is_reported_and_stops(monkeypatch) -> None:
    import llmft.selftest as selftest

    def broken(root: Path, ctx: dict[str, object]) -> str:
        raise RuntimeError("tokenizer exploded")

    monkeypatch.setattr(
        selftest,
        "STAGES",
        [("data", lambda r, c: "ok"), ("tokenize", broken), ("train", lambda r, c: "never")],
    )
    lines: list[str] = []
    report = run_selftest(say=lines.append)
    assert not report.passed
    assert [name for name, *_ in report.stages] == ["data", "tokenize"]
    assert lines[1].startswith("FAIL  tokenize") and "tokenizer exploded" in lines[1]
