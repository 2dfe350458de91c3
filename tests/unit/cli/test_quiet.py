"""cli/quiet.py: the libraries' warnings, log lines and progress bars are off unless --verbose, and llmft's
own warnings, the user's own settings and errors stay."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator

import pytest

from llmft.cli import quiet


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment, warnings filters and logger states apply() changes come back after the test."""
    for name in (*quiet.QUIET_ENV, quiet.VERBOSE_ENV):
        monkeypatch.delenv(name, raising=False)
    saved = {
        name: (logging.getLogger(name).level, list(logging.getLogger(name).filters))
        for name in quiet.QUIET_LOGGERS
    }
    with warnings.catch_warnings():
        yield
    for name, (level, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.filters[:] = filters


def _shown(module: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The warnings a FutureWarning attributed to ``module`` leaves once the filters are applied."""
    monkeypatch.setattr("sys.warnoptions", [])
    with warnings.catch_warnings(record=True) as seen:
        quiet.apply(verbose=False)
        warnings.warn_explicit("deprecated", FutureWarning, "x.py", 1, module=module)
    return [str(w.message) for w in seen]


def test_third_party_warnings_are_hidden_and_llmfts_own_are_not(
    isolated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _shown("transformers.modeling_utils", monkeypatch) == []
    assert _shown("peft.tuners.lora", monkeypatch) == []
    assert _shown("torch.utils.checkpoint", monkeypatch) == []
    assert _shown("llmft.train.loop", monkeypatch) == ["deprecated"]
    assert _shown("torchvision_like_name", monkeypatch) == ["deprecated"]  # a package, not a prefix


def test_the_environment_quiets_the_libraries_and_the_users_own_setting_wins(
    isolated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")
    quiet.apply(verbose=False)
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1"
    assert quiet.VERBOSE_ENV not in os.environ


def test_verbose_changes_nothing_and_reaches_child_processes(isolated: None) -> None:
    def state() -> list[tuple[int, list[logging.Filter]]]:
        return [(logging.getLogger(n).level, list(logging.getLogger(n).filters)) for n in quiet.QUIET_LOGGERS]

    before = state()
    quiet.apply(verbose=True)
    assert os.environ[quiet.VERBOSE_ENV] == "1" and quiet.verbose_enabled()
    assert not any(name in os.environ for name in quiet.QUIET_ENV)
    assert state() == before


def test_a_logger_that_resets_its_level_still_shows_errors_only(isolated: None) -> None:
    """DeepSpeed sets its logger's level to WARNING when it creates it, after apply() ran."""
    logger = logging.getLogger("DeepSpeed")
    quiet.apply(verbose=False)
    logger.setLevel(logging.WARNING)
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        logger.warning("Setting accelerator to CPU")
        logger.error("a real failure")
    finally:
        logger.removeHandler(handler)
    assert records == ["a real failure"]
