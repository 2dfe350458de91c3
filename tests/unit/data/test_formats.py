"""Row formats: detection from columns, the canonical row of each format, renaming/filtering columns,
cleaning (with counts of rows changed), length filters and bad rows (error or skip-and-count)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmft.config.schema import PreprocessingConfig
from llmft.data.formats import canonical_row, check_turn_order, clean_text, format_rows, prepare_columns
from llmft.data.rows import check_columns, detect_format
from llmft.errors import DataError

PRE = PreprocessingConfig()


def _pre(**fields: object) -> PreprocessingConfig:
    return PreprocessingConfig(**fields)


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


# --------------------------------------------------------------------------------------------- detection
@pytest.mark.parametrize(
    "columns, expected",
    [
        (["text"], "text"),
        (["text", "meta"], "text"),
        (["instruction", "input", "output"], "alpaca"),
        (["instruction", "output"], "alpaca"),
        (["instruction", "input", "output", "system"], "alpaca"),
        (["conversations"], "sharegpt"),
        (["messages"], "messages"),
        (["text", "label"], "classification"),
        (["prompt", "chosen", "rejected"], "preference"),
        (["input", "target"], "seq2seq"),
        (["messages", "text"], "messages"),
    ],
)
def test_format_is_detected_from_the_columns(columns: list[str], expected: str) -> None:
    assert detect_format(columns, PRE) == expected


def test_detection_follows_the_configured_column_names() -> None:
    assert detect_format(
        ["sentence", "sentiment"], _pre(text_column="sentence", label_column="sentiment")
    ) == ("classification")
    assert detect_format(["src", "tgt"], _pre(input_column="src", target_column="tgt")) == "seq2seq"


def test_an_explicit_format_wins_over_detection() -> None:
    assert detect_format(["text", "label"], _pre(format="text")) == "text"


def test_unknown_columns_are_listed_in_the_error() -> None:
    with pytest.raises(
        DataError, match=r"cannot tell the data format from the columns: question, answer"
    ) as err:
        detect_format(["question", "answer"], PRE, "train.jsonl (train split)")
    assert err.value.where == "train.jsonl (train split)"
    assert "column_mapping" in str(err.value.fix)


def test_missing_columns_for_an_explicit_format_name_the_ones_found() -> None:
    with pytest.raises(
        DataError,
        match=r"columns `instruction`, `output` not found for format alpaca; "
        r"the columns there are: text, id",
    ):
        check_columns(["text", "id"], "alpaca", PRE, "x")
    check_columns(["instruction", "output"], "alpaca", PRE, "x")


# ------------------------------------------------------------------------------------------ canonical rows
def test_alpaca_rows_become_a_user_and_an_assistant_turn() -> None:
    plain = canonical_row({"instruction": "Say hi.", "input": "", "output": "hi"}, "alpaca", PRE)
    with_input = canonical_row({"instruction": "Translate.", "input": "chat", "output": "cat"}, "alpaca", PRE)

    assert plain == {"messages": [_user("Say hi."), _assistant("hi")]}
    assert with_input["messages"][0] == _user("Translate.\n\nchat")


def test_alpaca_system_column_or_configured_system_prompt() -> None:
    row = {"instruction": "a", "input": None, "output": "b", "system": "Be brief."}

    own = canonical_row(row, "alpaca", _pre(system_prompt="ignored"))
    configured = canonical_row({**row, "system": None}, "alpaca", _pre(system_prompt="Be kind."))

    assert own["messages"][0] == {"role": "system", "content": "Be brief."}
    assert configured["messages"][0] == {"role": "system", "content": "Be kind."}


def test_sharegpt_roles_are_mapped() -> None:
    row = {
        "conversations": [
            {"from": "system", "value": "S"},
            {"from": "human", "value": "Q"},
            {"from": "gpt", "value": "A"},
            {"from": "Human", "value": "Q2"},
            {"from": "GPT", "value": "A2"},
        ]
    }

    messages = canonical_row(row, "sharegpt", PRE)["messages"]

    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert [m["content"] for m in messages] == ["S", "Q", "A", "Q2", "A2"]


def test_messages_rows_keep_their_turns_and_get_the_system_prompt() -> None:
    row = {"messages": [_user("Q"), _assistant("A")]}

    assert canonical_row(row, "messages", PRE) == row
    assert canonical_row(row, "messages", _pre(system_prompt="S"))["messages"][0] == {
        "role": "system",
        "content": "S",
    }


@pytest.mark.parametrize("label, expected", [(3, 3), ("pos", "pos"), (2.0, 2)])
def test_classification_labels_may_be_int_or_str(label: object, expected: object) -> None:
    row = canonical_row({"text": "good film", "label": label}, "classification", PRE)

    assert row == {"text": "good film", "label": expected}
    assert type(row["label"]) is type(expected)


def test_preference_rows_learn_the_chosen_answer() -> None:
    row = {"prompt": "Best colour?", "chosen": "Blue.", "rejected": "I refuse."}

    assert canonical_row(row, "preference", PRE) == {
        "messages": [_user("Best colour?"), _assistant("Blue.")],
        "rejected": "I refuse.",
    }


def test_seq2seq_rows_use_the_configured_columns() -> None:
    row = {"src": "translate: cat", "tgt": "chat"}

    assert canonical_row(row, "seq2seq", _pre(input_column="src", target_column="tgt")) == (
        {"input": "translate: cat", "target": "chat"}
    )


# --------------------------------------------------------------------------------------- turn order
@pytest.mark.parametrize(
    "roles, reason",
    [
        (["assistant", "user"], "must start with a user turn"),
        (["system", "assistant"], "must start with a user turn"),
        (["user", "user", "assistant"], "two user turns in a row"),
        (["user", "assistant", "assistant"], "two assistant turns in a row"),
        (["user", "assistant", "system", "user", "assistant"], "a system turn after the start"),
        (["system", "user"], "no assistant turn"),
        (["user"], "no assistant turn"),
    ],
)
def test_wrong_turn_orders_are_bad_rows(roles: list[str], reason: str) -> None:
    rows = [{"messages": [{"role": r, "content": "x"} for r in roles]}]

    _, report = format_rows(rows, "messages", _pre(on_bad_rows="skip"), "x")

    assert report.kept == 0
    assert reason in report.bad_rows[0][1]


ROLES = st.sampled_from(["system", "user", "assistant"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(ROLES, min_size=1, max_size=6), min_size=1, max_size=8))
def test_kept_conversations_always_alternate_from_a_user_turn(conversations: list[list[str]]) -> None:
    rows = [
        {"messages": [{"role": r, "content": f"turn {i}"} for i, r in enumerate(c)]} for c in conversations
    ]

    kept, report = format_rows(rows, "messages", _pre(on_bad_rows="skip"), "x")

    assert report.kept + len(report.bad_rows) == len(rows)
    for row in kept:
        roles = [m["role"] for m in row["messages"]]
        body = roles[1:] if roles[0] == "system" else roles
        assert body[::2] == ["user"] * len(body[::2])
        assert body[1::2] == ["assistant"] * len(body[1::2])
        assert "assistant" in body
        check_turn_order(row["messages"])


# ---------------------------------------------------------------------------------------------- columns
def test_column_mapping_renames_then_filter_columns_keeps() -> None:
    rows = [{"question": "Q", "answer": "A", "id": 1}]

    mapped = prepare_columns(rows, _pre(column_mapping={"question": "instruction", "answer": "output"}), "x")
    kept = prepare_columns(rows, _pre(column_mapping={"answer": "output"}, filter_columns=["output"]), "x")

    assert mapped == [{"instruction": "Q", "output": "A", "id": 1}]
    assert kept == [{"output": "A"}]


def test_mapping_an_unknown_column_lists_the_columns() -> None:
    with pytest.raises(
        DataError,
        match=r"column_mapping renames 'questoin', not in the data; "
        r"the columns there are: answer, question",
    ):
        prepare_columns(
            [{"question": "Q", "answer": "A"}], _pre(column_mapping={"questoin": "instruction"}), "x"
        )


# --------------------------------------------------------------------------------------------- cleaning
@pytest.mark.parametrize(
    "step, text, expected",
    [
        ("remove_html", "<p>Fish &amp; chips</p>", " Fish & chips "),
        ("fix_unicode", "ﬁne\u200b café\x07", "fine café"),
        ("normalize_whitespace", "  a \t b\n\n c  ", "a b c"),
    ],
)
def test_each_cleaning_step(step: str, text: str, expected: str) -> None:
    changed: Counter[str] = Counter()

    assert clean_text(text, _pre(**{step: True}), changed) == expected
    assert changed == {step: 1}


def test_fix_unicode_keeps_newlines_and_tabs() -> None:
    assert clean_text("a\tb\nc", _pre(fix_unicode=True), Counter()) == "a\tb\nc"


def test_cleaning_counts_rows_changed_not_fields() -> None:
    rows = [
        {"messages": [_user("<b>Q</b>"), _assistant("<i>A</i>")]},
        {"messages": [_user("plain"), _assistant("  spaced   out ")]},
        {"messages": [_user("clean"), _assistant("clean")]},
    ]
    cfg = _pre(remove_html=True, normalize_whitespace=True)

    out, report = format_rows(rows, "messages", cfg, "x")

    assert report.changed == {"remove_html": 1, "normalize_whitespace": 2}
    assert out[0]["messages"][1]["content"] == "A"
    assert "1 by remove_html" in report.summary()


def test_seq2seq_cleaning_counts_a_row_once() -> None:
    rows = [{"input": "<b>x</b>", "target": "<i>y</i>"}]

    out, report = format_rows(rows, "seq2seq", _pre(remove_html=True, normalize_whitespace=True), "x")

    assert out == [{"input": "x", "target": "y"}]
    assert report.changed == {"remove_html": 1, "normalize_whitespace": 1}


# ------------------------------------------------------------------------------------------ length limits
def test_min_and_max_length_drop_rows_and_count_the_reasons() -> None:
    rows = [{"text": t} for t in ("tiny", "just right", "a" * 50, "also fine!", "x")]

    out, report = format_rows(rows, "text", _pre(min_length=5, max_length=20), "x")

    assert [r["text"] for r in out] == ["just right", "also fine!"]
    assert report.dropped == {"shorter than min_length (5 chars)": 2, "longer than max_length (20 chars)": 1}
    assert (report.rows_in, report.kept) == (5, 2)
    assert report.to_dict()["dropped"] == dict(report.dropped)


def test_length_counts_every_turn_of_a_conversation() -> None:
    rows = [{"messages": [_user("a" * 6), _assistant("b" * 6)]}]

    assert format_rows(rows, "messages", _pre(max_length=11), "x")[1].dropped == {
        "longer than max_length (11 chars)": 1
    }
    assert format_rows(rows, "messages", _pre(max_length=12), "x")[1].kept == 1


def test_a_row_emptied_by_cleaning_is_dropped() -> None:
    rows = [{"text": "<br/><p></p>"}, {"text": "kept"}]

    out, report = format_rows(rows, "text", _pre(remove_html=True, normalize_whitespace=True), "x")

    assert out == [{"text": "kept"}]
    assert report.dropped == {"empty after cleaning": 1}


# ------------------------------------------------------------------------------------------------ bad rows
BAD_TEXT_ROWS = [
    {"text": "ok"},
    {"text": ""},
    {"text": None},
    {"text": 7},
    {"text": "  "},
    {"text": "fine"},
    {"text": []},
    {"text": ""},
]


def test_bad_rows_stop_the_run_listing_the_first_five() -> None:
    with pytest.raises(DataError) as err:
        format_rows(BAD_TEXT_ROWS, "text", PRE, "data.jsonl (train split)")

    message = err.value.message
    assert message.startswith(
        "6 bad row(s) in text data: row 2: empty text; row 3: missing text; "
        "row 4: text is not a string (int); row 5: empty text; row 7: text is not a string"
    )
    assert message.endswith("(and 1 more)")
    assert err.value.where == "data.jsonl (train split)"
    assert "on_bad_rows: skip" in str(err.value.fix)


def test_skip_drops_bad_rows_and_counts_them_by_reason() -> None:
    out, report = format_rows(BAD_TEXT_ROWS, "text", _pre(on_bad_rows="skip"), "x")

    assert out == [{"text": "ok"}, {"text": "fine"}]
    assert report.dropped == {"empty text": 3, "missing text": 1, "text is not a string": 2}
    assert [n for n, _ in report.bad_rows] == [2, 3, 4, 5, 7, 8]


def test_row_numbers_can_be_given_for_reordered_rows() -> None:
    rows = [{"text": "ok"}, {"text": ""}, {"text": "fine"}]

    with pytest.raises(DataError, match=r"row 17: empty text"):
        format_rows(rows, "text", PRE, "x", numbers=[40, 17, 3])


@pytest.mark.parametrize(
    "fmt, row, reason",
    [
        ("classification", {"text": "t", "label": None}, "missing label"),
        ("classification", {"text": "t", "label": " "}, "missing label"),
        ("classification", {"text": "t", "label": True}, "label is not a string or integer (bool)"),
        ("classification", {"text": "t", "label": 0.5}, "label is not a string or integer (float)"),
        ("alpaca", {"instruction": "i", "output": None}, "missing output"),
        ("alpaca", {"instruction": "", "output": "o"}, "empty instruction"),
        (
            "sharegpt",
            {"conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "a"}]},
            "unknown role `bot`",
        ),
        ("sharegpt", {"conversations": []}, "conversation is empty or not a list"),
        ("messages", {"messages": "hello"}, "conversation is empty or not a list"),
        (
            "messages",
            {"messages": [_user("q"), {"role": "assistant", "content": None}]},
            "missing turn content",
        ),
        ("messages", {"messages": [_user("q"), "a"]}, "a turn is not an object"),
        ("preference", {"prompt": "p", "chosen": "", "rejected": "r"}, "empty chosen"),
        ("seq2seq", {"input": "i", "target": None}, "missing target"),
    ],
)
def test_bad_row_reasons(fmt: str, row: dict[str, object], reason: str) -> None:
    _, report = format_rows([row], fmt, _pre(on_bad_rows="skip"), "x")

    assert report.bad_rows == [(1, report.bad_rows[0][1])]
    assert reason in report.bad_rows[0][1]


@pytest.mark.parametrize("label, shown", [("neutral", "neutral"), (3, "3"), (2.0, "2")])
def test_a_label_outside_the_declared_label_names_is_a_bad_row(label: object, shown: str) -> None:
    pre = _pre(label_names=["0", "1", "pos"], on_bad_rows="skip")
    rows = [{"text": "t", "label": "pos"}, {"text": "t", "label": label}, {"text": "t", "label": 1}]

    kept, report = format_rows(rows, "classification", pre, "x")

    assert [r["label"] for r in kept] == ["pos", 1]
    assert report.dropped == {"label not in label_names": 1}
    assert report.bad_rows == [(2, f"label not in label_names (`{shown}`; declared: 0, 1, pos)")]


def test_labels_are_not_checked_when_no_label_names_are_declared() -> None:
    rows = [{"text": "t", "label": w} for w in ("a", "b", "c")]

    kept, report = format_rows(rows, "classification", PRE, "x")

    assert len(kept) == 3 and not report.bad_rows


def test_unknown_roles_are_counted_together() -> None:
    rows = [
        {"messages": [_user("q"), {"role": role, "content": "a"}]} for role in ("bot", "robot", "function")
    ]

    _, report = format_rows(rows, "messages", _pre(on_bad_rows="skip"), "x")

    assert report.dropped == {"unknown role": 3}


def test_placeholders_fill_identity_rows_and_leave_other_braces() -> None:
    rows = [
        {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, made by {{author}}."},
        {"instruction": "Write JSON", "input": "", "output": '{"a": {"b": 1}} and {{unknown}}'},
    ]
    cfg = _pre(placeholders={"name": "Llamalo", "author": "the llmft team"})
    out, report = format_rows(rows, "alpaca", cfg, "x")
    assert out[0]["messages"][1]["content"] == "I am Llamalo, made by the llmft team."
    assert out[1]["messages"][1]["content"] == '{"a": {"b": 1}} and {{unknown}}'  # only declared keys
    assert report.changed == {"placeholders": 1}
