"""The built-in rewards on the answers models really write (GSM8K's "#### 42", \\boxed{}, <answer> tags,
"The answer is 3.50"), in both completion forms TRL passes (strings and assistant messages)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from llmft.rewards.args import builtin_issues, make_builtin
from llmft.rewards.builtins import BUILTINS, AnswerMatch, Format, JsonValid, Length, builtin_doc
from llmft.rewards.text import answer_tag, boxed, completion_text, last_number, to_number

GSM8K_GOLD = (
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"
)


def chat(text: str) -> list[dict[str, str]]:
    """A completion in TRL's conversational form."""
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize(
    ("extract", "text", "want"),
    [
        ("last_number", "She has 3 apples, so the answer is 3.50.", "3.50"),
        ("last_number", "Total: 48 + 24 = 72\n#### 72", "72"),
        ("last_number", "It costs $1,234.50 in all", "1,234.50"),
        ("last_number", "no digits here", None),
        ("boxed", "So $x = \\boxed{42}$.", "42"),
        ("boxed", "First \\boxed{1}, then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("boxed", "cut off: \\boxed{4", None),
        ("answer_tag", "<think>2+5</think><answer> 7 </answer>", "7"),
        ("answer_tag", "<answer>7", None),
    ],
)
def test_extractors_find_the_answer(extract: str, text: str, want: str | None) -> None:
    found = {"last_number": last_number, "boxed": boxed, "answer_tag": answer_tag}[extract](text)
    assert found == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("3.50", 3.5),
        ("1,234.5", 1234.5),
        ("$42", 42.0),
        ("\\frac{3}{4}", 0.75),
        ("3/4", 0.75),
        ("-2", -2.0),
        ("1.5e3", 1500.0),
        ("\\frac{1}{100000}", 1e-05),
    ],
)
def test_numbers_as_people_write_them(text: str, want: float) -> None:
    assert to_number(text) == want


def test_an_answer_holding_two_numbers_is_not_a_number() -> None:
    assert to_number("3 or 4") is None and to_number("x") is None and to_number(None) is None
    assert to_number("route e66") == 66.0  # a letter before digits is no exponent


def test_answer_match_numeric_on_gsm8k_rows() -> None:
    reward = AnswerMatch(mode="numeric", extract="last_number")
    completions = [
        "She sold 24 in May, so 48 + 24 = 72.\n#### 72",
        "The answer is 72.00",
        "The answer is 71.",
        "I don't know.",
    ]
    assert reward(completions=completions, answer=[GSM8K_GOLD] * 4) == [1.0, 1.0, 0.0, 0.0]


def test_answer_match_tolerance_is_absolute() -> None:
    reward = AnswerMatch(mode="numeric", tolerance=0.01)
    got = reward(completions=["The answer is 3.50", "The answer is 3.515", "3.52"], answer=["3.5"] * 3)
    # |3.515 - 3.5| = 0.015 > 0.01; |3.50 - 3.5| = 0
    assert got == [1.0, 0.0, 0.0]
    assert AnswerMatch(mode="numeric", tolerance=0.02)(completions=["3.515"], answer=["3.5"]) == [1.0]


@pytest.mark.parametrize(
    ("extract", "completion"),
    [
        ("boxed", "Adding them: $2+5=\\boxed{7}$"),
        ("answer_tag", "<think>two plus five</think>\n<answer>7</answer>"),
        ("last_number", "2 + 5 makes 7."),
    ],
)
def test_answer_match_extracts_from_conversational_completions(extract: str, completion: str) -> None:
    reward = AnswerMatch(mode="numeric", extract=extract)
    assert reward(completions=[chat(completion), chat("no answer")], answer=["7", "7"]) == [1.0, 0.0]


def test_answer_match_exact_compares_text_after_extraction() -> None:
    reward = AnswerMatch(column="solution", mode="exact", extract="answer_tag")
    completions = ["<answer>Paris</answer>", "<answer> Paris. </answer>", "<answer>paris</answer>", "Paris"]
    assert reward(completions=completions, solution=["Paris"] * 4) == [1.0, 1.0, 0.0, 0.0]
    # \frac{1}{2} is not the text 0.5, but it is the number
    assert AnswerMatch(extract="boxed")(completions=["\\boxed{\\frac{1}{2}}"], answer=["0.5"]) == [0.0]
    numeric = AnswerMatch(mode="numeric", extract="boxed")
    assert numeric(completions=["\\boxed{\\frac{1}{2}}"], answer=["0.5"]) == [1.0]


def test_answer_match_gives_none_where_the_row_has_no_answer() -> None:
    """TRL's convention: None means the reward does not apply to that completion (NaN, left out of sums)."""
    reward = AnswerMatch(mode="numeric")
    assert reward(completions=["7", "7", "7"], answer=["7", None, "no number"]) == [1.0, None, None]


def test_answer_match_without_its_column_names_the_columns_there() -> None:
    with pytest.raises(
        ValueError, match=r"reads column `answer`, which the data lacks \(columns: solution\)"
    ):
        AnswerMatch()(completions=["7"], solution=["7"])


def test_format_full_match_and_search() -> None:
    think = Format(pattern=r"<think>.*?</think>\s*<answer>.*?</answer>")
    completions = [
        "<think>\nstep one\nstep two\n</think>\n<answer>7</answer>",  # reasoning spans lines (dotall)
        "<think>x</think><answer>7</answer> and more",
        "<answer>7</answer>",
    ]
    assert think(completions=completions) == [1.0, 0.0, 0.0]
    anywhere = Format(pattern=r"<answer>\d+</answer>", match="search")
    assert anywhere(completions=[chat(c) for c in completions]) == [1.0, 1.0, 1.0]


def test_format_agrees_with_trl_think_format_reward() -> None:
    from trl.rewards import think_format_reward

    completions = [
        chat("<think>\nThis is my reasoning.\n</think>\nThis is my answer."),
        chat("<think>\nThis is my reasoning.\nThis is my answer."),
        chat("no think at all"),
    ]
    mine = Format(pattern=r"<think>(?!.*<think>)(.*?)</think>.*")
    assert mine(completions=completions) == think_format_reward(completions) == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("lengths", [[10, 80, 81, 90, 100, 101, 200]])
def test_length_cap_is_trl_soft_overlong_punishment(lengths: list[int]) -> None:
    from trl.rewards import get_soft_overlong_punishment

    ids = [[1] * n for n in lengths]
    theirs = get_soft_overlong_punishment(max_completion_len=100, soft_punish_cache=20)(completion_ids=ids)
    mine = Length(max=100, soft=20)(completions=["x"] * len(ids), completion_ids=ids)
    assert mine == theirs
    assert mine[3] == -0.5  # 90 tokens: halfway through the last 20


def test_length_target_and_characters() -> None:
    reward = Length(target=10, unit="chars")
    assert reward(completions=["a" * 10, "a" * 15, chat("a" * 5), "a" * 40]) == [0.0, -0.5, -0.5, -1.0]
    assert Length(max=5)(completions=["", ""], completion_ids=[[1] * 5, [1] * 6]) == [0.0, -1.0]


def test_json_valid() -> None:
    reward = JsonValid()
    completions = ['{"a": 1}', '```json\n{"a": [1, 2]}\n```', "{'a': 1}", "[1, 2", chat("[1, 2]")]
    assert reward(completions=completions) == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert JsonValid(require="object", strip_fences=False)(completions=completions) == [
        1.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ]


def test_the_last_assistant_message_is_the_answer_of_a_tool_calling_completion() -> None:
    completion = [
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "add"}}]},
        {"role": "tool", "content": "7"},
        {"role": "assistant", "content": [{"type": "text", "text": "It is "}, {"type": "text", "text": "7"}]},
    ]
    assert completion_text(completion) == "It is 7"


def test_the_table_gives_each_builtin_a_doc_and_documented_args() -> None:
    from llmft.rewards.args import arg_fields

    assert set(BUILTINS) == {"answer_match", "format", "length", "json_valid", "reward_model"}
    for name in BUILTINS:
        assert builtin_doc(name) and "\n" not in builtin_doc(name)
        assert all(f.metadata["doc"] for f in arg_fields(name)), name
    assert builtin_doc("json_valid") == "1.0 when the completion is valid JSON, else 0.0."


@pytest.mark.parametrize(
    ("name", "args", "where", "message", "fix"),
    [
        (
            "answer_match",
            {"tolerence": 0.1},
            "tolerence",
            "`answer_match` has no argument `tolerence`",
            "did you mean `tolerance`?",
        ),
        (
            "answer_match",
            {"mode": "numerc"},
            "mode",
            "`mode` is `numerc`",
            "did you mean `numeric`? one of: exact, numeric",
        ),
        (
            "answer_match",
            {"tolerance": "small"},
            "tolerance",
            "`tolerance` must be a number, got 'small'",
            None,
        ),
        ("answer_match", {"tolerance": -1}, "tolerance", "`tolerance` must be >= 0, got -1", None),
        (
            "format",
            {},
            "pattern",
            "`format` needs `pattern`: the regular expression (Python `re` syntax)",
            None,
        ),
        (
            "format",
            {"pattern": "(unclosed"},
            "pattern",
            "`pattern` is not a valid regular expression: missing ), unterminated subpattern at position 0",
            "escape",
        ),
        (
            "length",
            {"max": 10, "target": 5},
            "max",
            "`length` needs exactly one of `max` and `target`",
            "set `max`",
        ),
        ("length", {"max": True}, "max", "`max` must be an integer or null, got True", None),
    ],
)
def test_wrong_args_are_named_with_a_fix(
    name: str, args: dict, where: str, message: str, fix: str | None
) -> None:
    issues = builtin_issues(name, args, config_dir=Path("."))
    assert [(w, m) for w, m, _ in issues] == [(f"args.{where}", message)]
    got_fix = issues[0][2]
    assert (got_fix is None) if fix is None else got_fix.startswith(fix)


def test_good_args_build_the_callable_with_yaml_numbers() -> None:
    args = {"mode": "numeric", "tolerance": 1}
    assert builtin_issues("answer_match", args, Path(".")) == []
    reward = make_builtin("answer_match", args, Path("."))
    assert reward(completions=["#### 8"], answer=["9"]) == [1.0]  # an int tolerance from YAML is a number
    assert math.isclose(Length(target=4).one(6), -0.5)
