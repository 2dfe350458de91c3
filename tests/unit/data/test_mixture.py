"""Several data sets in one run: the rows of each epoch follow the weights, are fixed by (seed, epoch), and
use up a set's rows before repeating any."""

from __future__ import annotations

from collections import Counter

import pytest

from llmft.config.schema import DataConfig
from llmft.data.mixture import build_mixture


def _set_of(index: int, offsets: tuple[int, ...]) -> int:
    return max(k for k, start in enumerate(offsets) if index >= start)


def test_weighted_epochs_follow_the_weights_and_are_fixed_by_seed_and_epoch() -> None:
    mix = build_mixture(["a", "b"], [300, 500], "weighted", [3.0, 1.0], 2.0)
    assert mix.quotas() == [600, 200]  # 800 rows an epoch, 3:1
    epochs = [mix.epoch_rows(seed=7, epoch=e) for e in range(3)]
    assert epochs[1] == mix.epoch_rows(seed=7, epoch=1)  # a resume recomputes the same rows
    assert epochs[1] != mix.epoch_rows(seed=8, epoch=1)
    seen = Counter(_set_of(i, mix.offsets) for rows in epochs for i in rows)
    assert abs(seen[0] / seen[1] - 3.0) / 3.0 < 0.02


def test_a_set_is_used_up_before_any_of_its_rows_repeats() -> None:
    mix = build_mixture(["a", "b"], [10, 90], "weighted", [1.0, 1.0], 2.0)
    assert mix.quotas() == [50, 50]
    a_rows = [i for i in mix.epoch_rows(0, 0) if i < 10]
    assert len(a_rows) == 50
    for start in range(0, 50, 10):  # five full passes over set a, each a permutation
        assert sorted(a_rows[start : start + 10]) == list(range(10))
    b_rows = [i for i in mix.epoch_rows(0, 0) if i >= 10]
    assert len(set(b_rows)) == 50  # 50 of b's 90 rows, none twice


def test_temperature_lifts_small_sets_and_concat_keeps_every_row_once() -> None:
    by_size = build_mixture(["a", "b"], [100, 900], "temperature", [1.0, 1.0], 1.0)
    flattened = build_mixture(["a", "b"], [100, 900], "temperature", [1.0, 1.0], 4.0)
    assert by_size.quotas() == [100, 900]
    assert flattened.quotas()[0] > 300  # 100^(1/4) : 900^(1/4) ≈ 0.37 : 0.63
    concat = build_mixture(["a", "b"], [3, 4], "concat", [1.0, 1.0], 2.0)
    assert concat.epoch_rows(0, 5) == list(range(7))


SETS = [
    {"name": "a", "dataset": {"train_file": "a.jsonl"}},
    {"name": "b", "dataset": {"train_file": "b.jsonl"}},
]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dataset": {"train_file": "x.jsonl"}, "datasets": SETS}, "not both"),
        ({}, "found neither"),
        ({"datasets": [SETS[0], SETS[0]]}, "names must differ: a"),
        ({"datasets": [{**SETS[0], "weight": 3}, SETS[1]]}, "`weight` is set on a but mixing is `concat`"),
        ({"datasets": SETS, "mixing": "weighted", "packing": True}, "packing packs the rows once"),
        ({"dataset": {"train_file": "x.jsonl"}, "mixing": "weighted"}, "mixing `weighted` needs `datasets`"),
    ],
)
def test_mixture_rules(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DataConfig(**data)


def test_each_set_is_a_one_set_view_with_the_shared_tokenization() -> None:
    data = DataConfig(
        datasets=[{**SETS[0], "preprocessing": {"template": "alpaca"}}, SETS[1]],
        tokenization={"max_length": 99},
    )
    views = data.sets()
    assert [name for name, _ in views] == ["a", "b"]
    assert views[0][1].dataset.train_file == "a.jsonl" and views[0][1].preprocessing.template == "alpaca"
    assert views[1][1].preprocessing.template == "auto" and views[1][1].tokenization.max_length == 99


def test_a_drawn_mix_of_preference_sets_is_refused() -> None:
    """Pairs are encoded once, not drawn per epoch: a weighted mix would be a silent no-op."""
    from llmft.config.load import load_config
    from llmft.errors import ConfigError
    from llmft.train.objectives.choose import encode_for_objective

    config = load_config(
        None,
        [
            "model.name_or_path=m",
            "data.mixing=weighted",
            "data.datasets=[{name: a, dataset: {train_file: a.jsonl}, weight: 3}, "
            "{name: b, dataset: {train_file: b.jsonl}}]",
        ],
    )
    with pytest.raises(ConfigError, match="data.mixing `weighted` would draw other rows each epoch"):
        encode_for_objective("dpo", None, config.data, config.training.preference, None, "causal_lm")  # type: ignore[arg-type]
