"""data_report.json's token-length histogram (the report draws it): equal-width integer bins that cover
every length, trailing empty bins left out."""

from __future__ import annotations

from llmft.data.tokenize import TokenStats


def test_histogram_counts_every_length_once() -> None:
    stats = TokenStats(lengths=[3, 4, 4, 10, 22, 22, 22])
    hist = stats.histogram(bins=4)
    assert hist == {"edges": [3, 8, 13, 18, 23], "counts": [3, 1, 0, 3]}
    assert sum(hist["counts"]) == 7 and stats.to_dict()["length_histogram"] == stats.histogram()


def test_histogram_of_nothing_and_of_one_length() -> None:
    assert TokenStats().histogram() == {"edges": [], "counts": []}
    assert TokenStats(lengths=[5, 5]).histogram() == {"edges": [5, 6], "counts": [2]}
