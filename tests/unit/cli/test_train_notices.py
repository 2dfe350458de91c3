"""`llmft train` says a config's notices once per run: not again in each process `--nproc` starts (the
launcher said them), nor in a rank >= 1 of another launcher (torchrun, srun: rank 0 says them)."""

from __future__ import annotations

import pytest

from llmft.cli.train import COMMAND_ENV, _says_notices

LAUNCHED = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    COMMAND_ENV,
)


@pytest.fixture(autouse=True)
def one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LAUNCHED:
        monkeypatch.delenv(name, raising=False)


def test_one_process_says_them() -> None:
    assert _says_notices()


@pytest.mark.parametrize(("rank", "says"), [("0", True), ("1", False)])
def test_under_another_launcher_rank_zero_alone_says_them(
    rank: str, says: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert _says_notices() is says


def test_a_process_nproc_started_leaves_them_to_the_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv(COMMAND_ENV, "llmft train c.yaml --nproc 2")
    assert not _says_notices()
