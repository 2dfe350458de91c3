"""`llmft bench` without --suite runs the short suite (the headline comparison once, minutes), the full
benchmark only when asked; an unknown suite is a config error naming the ones there are."""

from __future__ import annotations

import inspect

import pytest

from llmft.bench.scenario import suite
from llmft.cli.bench import bench


def test_bare_bench_runs_the_short_suite() -> None:
    assert inspect.signature(bench).parameters["suite"].default.default == "short"


def test_the_short_suite_is_the_headline_scenario_once_against_the_hf_script() -> None:
    (short,) = suite("short")
    (headline, *_) = suite("full")

    assert (short.name, short.contenders, short.rounds) == (headline.name, ["llmft", "hf"], 1)
    assert (short.steps, short.batch_size, short.max_length) == (
        headline.steps,
        headline.batch_size,
        headline.max_length,
    )
    assert len(suite("full")) == 3 and headline.rounds == 3


def test_an_unknown_suite_names_the_ones_there_are() -> None:
    with pytest.raises(ValueError, match=r"unknown suite 'fast' \(short, full, ci, dpo, dpo-ci or smollm2\)"):
        suite("fast")


def test_the_smollm2_suite_trains_120_real_rows_in_the_models_own_template(tmp_path) -> None:
    from llmft.bench.scenario import llmft_config

    (real,) = suite("smollm2")
    assert real.contenders == ["llmft", "hf"] and real.train_rows == 120
    config = llmft_config(real, tmp_path, tmp_path / "t.json", tmp_path / "v.json")
    assert config["data"]["preprocessing"] == {"template": "tokenizer"}  # type: ignore[index]
    assert config["data"]["packing"] is True  # type: ignore[index]
