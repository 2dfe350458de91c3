"""Shared test setup: fully offline Hugging Face, and session-cached tiny models and synthetic data.

The environment is set at import, before any test module imports transformers or datasets, so nothing
can reach the network or write to the user's real cache. Torch thread settings are left alone.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="llmft-test-hf-home-")
os.environ["TOKENIZERS_PARALLELISM"] = "false"

REPO_ROOT = Path(__file__).resolve().parents[1]

TinyModelFactory = Callable[[str], Path]
SynthDataFactory = Callable[..., dict[str, Path]]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModelFactory:
    """``tiny_model("llama") -> Path``: each architecture is built once per session, then reused.

    Tests must treat the directory as read-only; copy it first to modify it.
    """
    from llmft.synth.models import build_tiny_model

    built: dict[str, Path] = {}

    def make(arch: str) -> Path:
        if arch not in built:
            built[arch] = build_tiny_model(arch, tmp_path_factory.mktemp(f"tiny-{arch}"))
        return built[arch]

    return make


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The repository's sibling ``shared/data`` (real demo data sets); skips when it is not there."""
    path = REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data directory {path} is missing")
    return path


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> SynthDataFactory:
    """``synth_data("sft", rows=200, seed=0, style=None) -> {"train": path, ...}``, cached per arguments."""
    from llmft.synth.data import write_synthetic_data

    made: dict[tuple[str, int, int, str | None], dict[str, Path]] = {}

    def make(task: str, rows: int = 200, seed: int = 0, style: str | None = None) -> dict[str, Path]:
        key = (task, rows, seed, style)
        if key not in made:
            out = tmp_path_factory.mktemp(f"synth-{task}-{rows}-{seed}-{style or 'default'}")
            made[key] = write_synthetic_data(task, out, rows=rows, seed=seed, style=style)
        return made[key]

    return make


def pytest_configure(config: pytest.Config) -> None:
    """Under `make test-matrix` (LLMFT_TEST_THREADS set) the test process computes with that many threads."""
    if "LLMFT_TEST_THREADS" in os.environ:
        import torch
        from tests.matrix import THREADS

        torch.set_num_threads(THREADS)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """End with what was skipped and why, counted by reason: a machine that silently skips a whole area
    (no chromium, no ../shared/data) shows it on the last screen of `make test`."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section(f"{len(skipped)} skipped, by reason", sep="-")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.line(f"{count:4d} × {reason}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration and tests/real runs the CLI as a user would (subprocesses, real
    files): slow. One rule here, not a mark per file; `pytest -m "not slow"` is the quick loop."""
    slow_dirs = {REPO_ROOT / "tests" / "integration", REPO_ROOT / "tests" / "real"}
    for item in items:
        if slow_dirs & set(Path(str(item.fspath)).parents):
            item.add_marker(pytest.mark.slow)
