"""Preference data: every layout people have becomes one canonical pair (or judged row), bad rows are named
by file and row, and pairs tokenize as prompt + completion with the prompt a prefix, cut as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from llmft.config.load import load_config
from llmft.config.schema import PreprocessingConfig
from llmft.data.build import prepare_rows
from llmft.data.formats import canonical_row
from llmft.data.labels import IGNORE
from llmft.data.pair_collate import PairCollator
from llmft.data.preference import PairLimits, PromptEncoder, encode_preference_splits, fit
from llmft.data.rows import detect_format
from llmft.data.templates import ChatML, choose_template
from llmft.errors import DataError

PRE = PreprocessingConfig()
USER = {"role": "user", "content": "Sky colour?"}
CHOSEN, REJECTED = "Blue.", "Green."
TURNS = [{"role": "user", "content": "p"}, {"role": "assistant", "content": "c"}]
PAIR = {"messages": [USER, {"role": "assistant", "content": CHOSEN}], "rejected": REJECTED}

LAYOUTS = {
    "strings": {"prompt": "Sky colour?", "chosen": CHOSEN, "rejected": REJECTED},
    "message lists": {
        "prompt": [USER],
        "chosen": [{"role": "assistant", "content": CHOSEN}],
        "rejected": [{"role": "assistant", "content": REJECTED}],
    },
    "alpaca": {"instruction": "Sky colour?", "input": "", "chosen": CHOSEN, "rejected": REJECTED},
    "sharegpt": {
        "conversations": [{"from": "human", "value": "Sky colour?"}],
        "chosen": {"from": "gpt", "value": CHOSEN},
        "rejected": {"from": "gpt", "value": REJECTED},
    },
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_pair_layout_is_detected_and_becomes_the_same_pair(layout: str) -> None:
    row = LAYOUTS[layout]
    assert detect_format(list(row), PRE) == "preference"
    assert canonical_row(row, "preference", PRE) == PAIR


def test_alpaca_input_and_sharegpt_system_turns_join_the_prompt() -> None:
    alpaca = {"instruction": "Add.", "input": "1 2", "chosen": "3", "rejected": "4", "system": "Be exact."}
    assert canonical_row(alpaca, "preference", PRE)["messages"][:2] == [
        {"role": "system", "content": "Be exact."},
        {"role": "user", "content": "Add.\n\n1 2"},
    ]
    sharegpt = {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello"},
            {"from": "human", "value": "Sky colour?"},
        ],
        "chosen": {"from": "gpt", "value": CHOSEN},
        "rejected": {"from": "gpt", "value": REJECTED},
    }
    messages = canonical_row(sharegpt, "preference", PRE)["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[-1]["content"] == CHOSEN


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"prompt": "p", "completion": "c", "label": True}, True),
        ({"prompt": "p", "completion": "c", "label": False}, False),
        ({"messages": TURNS, "label": 1}, True),
        ({"messages": TURNS, "kto_tag": False}, False),
    ],
)
def test_unpaired_layouts_are_kto_rows_judging_the_last_answer(
    row: dict[str, object], expected: bool
) -> None:
    assert detect_format(list(row), PRE) == "kto"
    got = canonical_row(row, "kto", PRE)
    assert got["desirable"] is expected and got["messages"][-1] == {"role": "assistant", "content": "c"}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"prompt": "p", "chosen": " ", "rejected": "r"}, "empty chosen"),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, "chosen and rejected are identical"),
        (
            {"prompt": TURNS, "chosen": "c", "rejected": "r"},
            "the prompt must end with a user turn (it ends with assistant)",
        ),
        (
            {"prompt": "p", "chosen": {"from": "human", "value": "c"}, "rejected": "r"},
            "chosen is a `human` turn",
        ),
        ({"prompt": "p", "completion": "c", "label": "maybe"}, "label is not a boolean"),
    ],
)
def test_bad_preference_rows_say_why(row: dict[str, object], reason: str) -> None:
    fmt = detect_format(list(row), PRE)
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        canonical_row(row, fmt, PRE)


def test_a_judged_answer_alone_with_a_system_prompt_is_a_bad_row_not_a_crash() -> None:
    row = {"messages": [{"role": "assistant", "content": "a"}], "label": True}
    pre = PreprocessingConfig(system_prompt="Be brief.")
    with pytest.raises(ValueError, match=r"the prompt must end with a user turn \(it ends with system\)"):
        canonical_row(row, detect_format(list(row), pre), pre)


def _config(path: Path, *overrides: str):  # noqa: ANN202
    return load_config(
        None,
        [
            f"data.dataset.train_file={path}",
            "model.name_or_path=x",
            "data.dataset.validation_fraction=0",
            *overrides,
        ],
    )


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_bad_pairs_are_named_by_file_and_row_or_skipped_and_counted(tmp_path: Path) -> None:
    good = {"prompt": "p", "chosen": "c", "rejected": "r"}
    path = _jsonl(tmp_path / "pairs.jsonl", [good, {**good, "rejected": "c"}, good, {**good, "chosen": ""}])
    config = _config(path)
    with pytest.raises(DataError) as err:
        prepare_rows(config.data, config.seed)
    assert (
        "2 bad row(s) in preference data: row 2: chosen and rejected are identical; row 4: empty chosen"
        in str(err.value)
    )
    assert "pairs.jsonl" in str(err.value.where)
    config.data.preprocessing.on_bad_rows = "skip"
    prepared = prepare_rows(config.data, config.seed)
    assert prepared.reports["train"].kept == 2 and [r["row"] for r in prepared.rows["train"]] == [1, 3]


@pytest.fixture(scope="module")
def chat_tokenizer(tiny_model):  # noqa: ANN201
    return AutoTokenizer.from_pretrained(tiny_model("llama"))  # has a ChatML chat template


def test_prompt_is_the_generation_prompt_and_completion_the_turn_with_its_end_marker(chat_tokenizer) -> None:
    encoder = PromptEncoder.build(chat_tokenizer, choose_template("auto", chat_tokenizer, "preference"))
    prompt, completion = encoder.split(PAIR["messages"])
    rendered_prompt = chat_tokenizer.apply_chat_template([USER], tokenize=False, add_generation_prompt=True)
    bos = chat_tokenizer.bos_token  # the tokenizer's own BOS, once, as SFT rows get it
    assert chat_tokenizer.decode(prompt) == bos + rendered_prompt
    assert chat_tokenizer.decode(completion) == f"{CHOSEN}<|im_end|>"
    full = chat_tokenizer.apply_chat_template(PAIR["messages"], tokenize=False)
    assert (bos + full).startswith(chat_tokenizer.decode(prompt + completion)), "it is the chat rendering"
    assert (
        prompt.count(chat_tokenizer.bos_token_id) <= 1 and completion.count(chat_tokenizer.eos_token_id) <= 1
    )


def test_too_long_rows_cut_the_prompt_from_the_left_then_the_completions() -> None:
    prompt, completions = list(range(10)), [list(range(100, 108)), list(range(200, 203))]
    cut_prompt, cut, was_cut = fit(prompt, completions, PairLimits(max_length=12, max_prompt_length=6))
    assert was_cut and cut_prompt == [4, 5, 6, 7, 8, 9], "the prompt keeps its end"
    assert cut == [list(range(100, 106)), [200, 201, 202]], "completions lose their end"
    assert fit([1, 2], [[3]], PairLimits(12, 6)) == ([1, 2], [[3]], False)


def test_a_prompt_that_leaves_no_room_is_a_bad_row_named_by_its_row(tmp_path: Path, chat_tokenizer) -> None:
    rows = [
        {"prompt": "sky " * 40, "chosen": "blue", "rejected": "red"},
        {"prompt": "p", "chosen": "c", "rejected": "r"},
    ]
    path = _jsonl(tmp_path / "long.jsonl", rows)
    config = _config(path, "data.tokenization.truncation=false")
    prepared = prepare_rows(config.data, config.seed)
    limits = PairLimits(max_length=24, max_prompt_length=12, truncation=False)
    with pytest.raises(DataError, match="row 1: the prompt .* leaves no room for the answer"):
        encode_preference_splits(prepared, config.data, chat_tokenizer, limits, unpaired=False)
    config.data.preprocessing.on_bad_rows = "skip"
    encoded = encode_preference_splits(prepared, config.data, chat_tokenizer, limits, unpaired=False)
    assert encoded.stats["train"].rows == 1 and encoded.stats["train"].dropped_too_long == 1


def test_truncated_pairs_are_counted_in_the_token_stats(tmp_path: Path, chat_tokenizer) -> None:
    rows = [
        {"prompt": "sky " * 40, "chosen": "blue", "rejected": "red"},
        {"prompt": "p", "chosen": "c", "rejected": "r"},
    ]
    config = _config(_jsonl(tmp_path / "a.jsonl", rows))
    encoded = encode_preference_splits(
        prepare_rows(config.data, config.seed),
        config.data,
        chat_tokenizer,
        PairLimits(24, 12),
        unpaired=False,
    )
    stats, first = encoded.stats["train"], encoded.examples["train"][0]
    assert stats.rows == 2 and stats.truncated == 1
    assert len(first["prompt_ids"]) == 12 and len(first["prompt_ids"]) + len(first["chosen_ids"]) <= 24


def test_pairs_and_kto_rows_from_pairs(tmp_path: Path, chat_tokenizer) -> None:
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3)]
    config = _config(_jsonl(tmp_path / "p.jsonl", rows))
    prepared = prepare_rows(config.data, config.seed)
    unpaired = encode_preference_splits(
        prepared, config.data, chat_tokenizer, PairLimits(64, 32), unpaired=True
    )
    examples = unpaired.examples["train"]
    assert [e["desirable"] for e in examples] == [1, 0, 1, 0, 1, 0], (
        "each pair gives a desirable and an undesirable row"
    )
    assert examples[1]["kl_completion_ids"] == examples[0]["completion_ids"], (
        "KL partner: the previous row's answer"
    )
    assert examples[0]["kl_completion_ids"] == examples[-1]["completion_ids"]


def test_collator_stacks_chosen_then_rejected_with_completion_only_labels() -> None:
    batch = PairCollator(pad_id=0, pad_to_multiple_of=None)(
        [{"prompt_ids": [1, 2], "chosen_ids": [3, 4], "rejected_ids": [5]},
         {"prompt_ids": [6], "chosen_ids": [7], "rejected_ids": [8, 9, 10]}]
    )  # fmt: skip
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4], [6, 7, 0, 0], [1, 2, 5, 0], [6, 8, 9, 10]]
    assert batch["labels"].tolist() == [
        [IGNORE, IGNORE, 3, 4], [IGNORE, 7, IGNORE, IGNORE], [IGNORE, IGNORE, 5, IGNORE], [IGNORE, 8, 9, 10]
    ]  # fmt: skip
    assert batch["attention_mask"].sum(1).tolist() == [4, 2, 3, 4]


def test_builtin_chatml_gives_the_same_prompt_for_chosen_and_rejected(chat_tokenizer) -> None:
    encoder = PromptEncoder.build(chat_tokenizer, ChatML())
    first, _ = encoder.split(PAIR["messages"])
    second, _ = encoder.split([USER, {"role": "assistant", "content": REJECTED}])
    assert first == second
