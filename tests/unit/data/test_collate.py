"""Batches: dynamic padding (to the longest, rounded up to a multiple of 8) or fixed padding, labels padded
with -100, and a batch order that is a pure function of (seed, epoch), covers every row exactly once, and
with length grouping wastes less on padding than a random order."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmft.data.collate import IGNORE, PadCollator, batch_order

PAD = 0


def _examples(*lengths: int) -> list[dict[str, object]]:
    return [{"input_ids": list(range(1, n + 1)), "labels": list(range(101, 101 + n))} for n in lengths]


def test_pads_to_the_longest_rounded_up_to_a_multiple_of_8() -> None:
    batch = PadCollator(pad_id=PAD)(_examples(3, 11, 5))

    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["labels"].shape == (3, 16)
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 11, 5]
    assert batch["input_ids"][0].tolist() == [1, 2, 3] + [PAD] * 13
    assert batch["labels"][0].tolist() == [101, 102, 103] + [IGNORE] * 13
    assert batch["input_ids"].dtype == batch["labels"].dtype == torch.long


@pytest.mark.parametrize("multiple, longest, expected", [(8, 8, 8), (8, 9, 16), (None, 11, 11), (64, 3, 64)])
def test_padded_length(multiple: int | None, longest: int, expected: int) -> None:
    batch = PadCollator(pad_id=PAD, pad_to_multiple_of=multiple)(_examples(1, longest))

    assert batch["input_ids"].shape[1] == expected


def test_padding_to_max_length_is_fixed() -> None:
    collate = PadCollator(pad_id=7, fixed_length=32)

    short, longer = collate(_examples(2)), collate(_examples(30, 4))

    assert short["input_ids"].shape == (1, 32) and longer["input_ids"].shape == (2, 32)
    assert short["input_ids"][0, 2:].eq(7).all() and short["labels"][0, 2:].eq(IGNORE).all()


def test_the_pad_id_only_fills_and_masked_labels_stay_masked() -> None:
    examples = [{"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7]}, {"input_ids": [8], "labels": [8]}]

    batch = PadCollator(pad_id=99, pad_to_multiple_of=None)(examples)

    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 99, 99]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_classification_labels_are_one_per_row() -> None:
    examples = [{"input_ids": [1, 2, 3], "labels": 2}, {"input_ids": [4], "labels": 0}]

    batch = PadCollator(pad_id=PAD, label_is_sequence=False)(examples)

    assert batch["labels"].tolist() == [2, 0] and batch["input_ids"].shape == (2, 8)


def test_seq2seq_labels_longer_than_the_inputs_get_their_own_width() -> None:
    examples = [{"input_ids": [1, 2], "labels": list(range(10, 20))}, {"input_ids": [3], "labels": [4]}]

    batch = PadCollator(pad_id=PAD)(examples)

    assert batch["input_ids"].shape == (2, 8)
    assert batch["labels"].shape == (2, 16)
    assert batch["labels"][1].tolist() == [4] + [IGNORE] * 15


# ----------------------------------------------------------------------------------------------- order
_RNG = random.Random(3)
LENGTHS = [_RNG.randint(1, 512) for _ in range(1000)]


def _padded_tokens(lengths: list[int], batches: list[list[int]]) -> int:
    """Pad tokens the collator adds (longest of each batch, rounded up to 8) over one epoch."""
    total = 0
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        width = (longest + 7) // 8 * 8
        total += sum(width - lengths[i] for i in batch)
    return total


@pytest.mark.parametrize("group", [True, False])
def test_every_row_is_in_exactly_one_batch(group: bool) -> None:
    batches = batch_order(LENGTHS, batch_size=8, seed=0, epoch=0, group_by_length=group)

    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
    assert all(len(b) == 8 for b in batches)


@pytest.mark.parametrize("group", [True, False])
def test_the_order_is_a_function_of_seed_and_epoch(group: bool) -> None:
    def order(seed: int, epoch: int) -> list[list[int]]:
        return batch_order(LENGTHS, batch_size=8, seed=seed, epoch=epoch, group_by_length=group)

    assert order(1, 0) == order(1, 0)
    assert order(1, 3) == order(1, 3)
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)


def test_length_grouping_wastes_less_on_padding_than_a_random_order() -> None:
    grouped = batch_order(LENGTHS, batch_size=8, seed=0, epoch=0, group_by_length=True)
    shuffled = batch_order(LENGTHS, batch_size=8, seed=0, epoch=0, group_by_length=False)

    assert _padded_tokens(LENGTHS, grouped) * 5 < _padded_tokens(LENGTHS, shuffled)
    # Still shuffled: the batches do not come longest-first.
    longest = [max(LENGTHS[i] for i in b) for b in grouped]
    assert longest != sorted(longest, reverse=True)


def test_the_measured_padding_matches_the_collator() -> None:
    lengths = LENGTHS[:40]
    batches = batch_order(lengths, batch_size=8, seed=0, epoch=0, group_by_length=False)
    collate = PadCollator(pad_id=PAD)
    examples = _examples(*lengths)

    padded = sum(int((collate([examples[i] for i in b])["attention_mask"] == 0).sum()) for b in batches)

    assert padded == _padded_tokens(lengths, batches)


def test_no_shuffle_keeps_the_row_order() -> None:
    batches = batch_order([5, 1, 3, 2, 4], batch_size=2, seed=9, epoch=4, group_by_length=True, shuffle=False)

    assert batches == [[0, 1], [2, 3], [4]]


@settings(max_examples=100, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=700),
    batch_size=st.integers(1, 16),
    seed=st.integers(0, 2**31),
    epoch=st.integers(0, 50),
    group=st.booleans(),
)
def test_batches_cover_every_index_once(
    lengths: list[int], batch_size: int, seed: int, epoch: int, group: bool
) -> None:
    batches = batch_order(lengths, batch_size, seed, epoch, group)

    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert sum(1 for b in batches if len(b) < batch_size) <= (len(lengths) + batch_size * 50 - 1) // (
        batch_size * 50
    )
    assert batches == batch_order(lengths, batch_size, seed, epoch, group)
