"""Conversations in the layouts real data sets use (files in tests/data/chat_layouts): content as a list of
parts (`text` or `value` keys), per-turn `loss_weight`, tool calls in the messages shape (with a `tools`
column, as a list or as JSON text) and in sharegpt's `function_call`/`observation` spelling.

Each file goes through the real path (file → Arrow → format → template → tokens). The tokens that carry loss
decode to exactly the assistant's calls and answers (and the turns a `loss_weight` adds), computed here
from the raw file; the rendered text equals the tokenizer's own `apply_chat_template` with `tools`; the
built-in chatml renders tools as the Qwen2.5-style template of the tiny tokenizer does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from llmft.config.load import load_config
from llmft.config.schema import PreprocessingConfig
from llmft.data.build import encode_splits, prepare_rows
from llmft.data.conversation import conversation, tools_column
from llmft.data.formats import format_rows
from llmft.data.templates import Alpaca, ChatML, TokenizerTemplate
from llmft.data.tokenize import IGNORE
from llmft.errors import DataError

LAYOUTS = Path(__file__).resolve().parents[2] / "data" / "chat_layouts"


@pytest.fixture(scope="module")
def llama(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model("llama"))


@pytest.fixture(scope="module")
def gpt2(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model("gpt2"))


def _raw(name: str) -> list[dict[str, object]]:
    text = (LAYOUTS / name).read_text(encoding="utf-8")
    return json.loads(text) if name.endswith(".json") else [json.loads(line) for line in text.splitlines()]


def _encoded(name: str, tokenizer: object, *overrides: str) -> tuple[list[dict[str, object]], list[dict]]:
    """Canonical rows and encoded examples of a layout file, in file order (no validation split)."""
    config = load_config(
        None,
        [
            f"data.dataset.train_file={LAYOUTS / name}",
            "data.dataset.validation_fraction=0",
            "data.tokenization.max_length=4096",
            "model.name_or_path=unused",
            *overrides,
        ],
    )
    prepared = prepare_rows(config.data, config.seed)
    encoded = encode_splits(prepared, config.data, tokenizer, "causal_lm")
    return prepared.rows["train"], encoded.examples["train"]


def _trained_text(tokenizer, example: dict[str, object]) -> list[str]:
    """Decoded runs of consecutive tokens that carry loss."""
    spans: list[list[int]] = []
    previous = IGNORE
    for token, label in zip(example["input_ids"], example["labels"], strict=True):
        if label != IGNORE:
            if previous == IGNORE:
                spans.append([])
            spans[-1].append(token)
        previous = label
    return [tokenizer.decode(span, skip_special_tokens=True) for span in spans]


def _text(content: object) -> str:
    return content if isinstance(content, str) else "\n".join(p.get("text", p.get("value")) for p in content)


def _call_text(name: str, arguments: object) -> str:
    if isinstance(arguments, str):
        arguments = json.loads(arguments)
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


# ------------------------------------------------------------------------------------- content parts
def test_content_parts_and_loss_weight_train_exactly_the_weighted_turns(llama) -> None:
    raw = _raw("parts_loss_weight.jsonl")

    rows, examples = _encoded("parts_loss_weight.jsonl", llama)

    expected = []
    for row in raw:
        spans = []
        for m in row["messages"]:
            weight = m.get("loss_weight", 1 if m["role"] == "assistant" else 0)
            if weight and m["role"] == "assistant":
                spans.append(_text(m["content"]))
            elif weight:  # a prompt turn trained by loss_weight: the whole turn, header included
                spans.append(f"{m['role']}\n{_text(m['content'])}")
        expected.append(spans)
    assert [_trained_text(llama, e) for e in examples] == expected
    assert expected[0] == ["Blue."] and expected[2] == ["It means\nhello."]
    assert rows[0]["messages"][1]["content"] == "Name a primary colour.\nJust one word."
    for row, example in zip(rows, examples, strict=True):
        assert (
            example["input_ids"]
            == llama(llama.apply_chat_template(row["messages"], tokenize=False))["input_ids"]
        )


def test_content_parts_spelled_value(llama) -> None:
    raw = _raw("parts_value.json")

    rows, examples = _encoded("parts_value.json", llama)

    assert [_trained_text(llama, e) for e in examples] == [[_text(r["messages"][1]["content"])] for r in raw]
    assert rows[1]["messages"][0]["content"] == "Spell cat backwards.\nLower case please."


@pytest.mark.parametrize(
    "part, reason",
    [
        ({"type": "image_url", "image_url": {"url": "x.png"}}, "non-text part in turn content (`image_url`)"),
        ({"type": "input_audio", "input_audio": {}}, "llmft trains text-only models"),
        ({"type": "text"}, "a text part of the turn content has no `text` (or `value`) string"),
    ],
)
def test_non_text_parts_are_bad_rows(part: dict[str, object], reason: str) -> None:
    row = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Look:"}, part]}]}
    row["messages"].append({"role": "assistant", "content": "A cat."})

    with pytest.raises(DataError, match="1 bad row") as err:
        format_rows([row], "messages", PreprocessingConfig(), "x.jsonl")
    assert reason in str(err.value)


@pytest.mark.parametrize(
    "weights, reason",
    [
        ((0.5,), "loss_weight must be 0 or 1 (got `0.5`)"),
        (("yes",), "loss_weight must be 0 or 1 (got `yes`)"),
        ((0,), "no turn carries loss (every assistant turn has loss_weight 0)"),
    ],
)
def test_bad_loss_weights(weights: tuple[object, ...], reason: str) -> None:
    row = {
        "messages": [
            {"role": "user", "content": "q"},
            *({"role": "assistant", "content": "a", "loss_weight": w} for w in weights),
        ]
    }

    _, report = format_rows([row], "messages", PreprocessingConfig(on_bad_rows="skip"), "x")

    assert report.bad_rows == [(1, reason)]


# ------------------------------------------------------------------------------------------- tool calls
def _expected_tool_spans(messages: list[dict[str, object]], sharegpt: bool) -> list[str]:
    """What an assistant says or calls, from the raw turns: the answers, and the calls as Qwen2.5 renders."""
    spans = []
    for m in messages:
        role, text = (m["from"], m["value"]) if sharegpt else (m["role"], m["content"])
        if role == "function_call":
            calls = json.loads(text)
            calls = calls if isinstance(calls, list) else [calls]
            spans.append("\n".join(_call_text(c["name"], c["arguments"]) for c in calls))
        elif role in ("assistant", "gpt"):
            calls = [c["function"] for c in m.get("tool_calls", [])]
            spans.append(
                "\n".join(([text] if text else []) + [_call_text(c["name"], c["arguments"]) for c in calls])
            )
    return spans


@pytest.mark.parametrize("name", ["tools_messages.jsonl", "tools_sharegpt.json"])
def test_tool_calls_train_exactly_the_calls_and_answers(name: str, llama) -> None:
    sharegpt = name.startswith("tools_sharegpt")
    raw = _raw(name)

    rows, examples = _encoded(name, llama)

    turns = "conversations" if sharegpt else "messages"
    assert [_trained_text(llama, e) for e in examples] == [
        _expected_tool_spans(r[turns], sharegpt) for r in raw
    ]
    for raw_row, row, example in zip(raw, rows, examples, strict=True):
        tools = tools_column(raw_row.get("tools"))
        assert row.get("tools") == tools
        text = llama.apply_chat_template(row["messages"], tools=tools, tokenize=False)
        assert example["input_ids"] == llama(text)["input_ids"]
        masked = llama.decode(
            [t for t, label in zip(example["input_ids"], example["labels"]) if label == IGNORE]
        )
        for tool_turn in (m for m in row["messages"] if m["role"] == "tool"):
            assert f"<tool_response>\n{tool_turn['content']}\n</tool_response>" in masked
        for tool in tools or []:
            assert json.dumps(tool) in masked


def test_sharegpt_function_call_becomes_the_messages_shape() -> None:
    raw = _raw("tools_sharegpt.json")[1]

    messages = conversation(raw["conversations"], "sharegpt")

    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert messages[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "type": "function",
                "function": {"name": "convert", "arguments": {"value": 3, "from": "km", "to": "mi"}},
            },
            {
                "type": "function",
                "function": {"name": "convert", "arguments": {"value": 10, "from": "kg", "to": "lb"}},
            },
        ],
    }


@pytest.mark.parametrize("name", ["tools_messages.jsonl", "tools_sharegpt.json", "parts_loss_weight.jsonl"])
def test_builtin_chatml_renders_tools_as_the_qwen_style_template(name: str, llama, gpt2) -> None:
    rows, _ = _encoded(name, llama)
    for row in rows:
        segments = ChatML().segments(row["messages"], row.get("tools"))
        rendered = llama.apply_chat_template(
            [{k: v for k, v in m.items() if k != "loss_weight"} for m in row["messages"]],
            tools=row.get("tools"),
            tokenize=False,
        )
        assert "".join(s.text for s in segments) == rendered

    _, chatml_examples = _encoded(name, gpt2, "data.preprocessing.template=chatml")
    _, llama_examples = _encoded(name, llama)
    for on_gpt2, on_llama in zip(chatml_examples, llama_examples, strict=True):
        # gpt2 has no ChatML tokens: they are learned as text (decoding does not skip them).
        trained = [
            t.replace("<|im_start|>", "").replace("<|im_end|>", "") for t in _trained_text(gpt2, on_gpt2)
        ]
        assert trained == _trained_text(llama, on_llama)


def test_dropping_a_turns_loss_weight_keeps_the_default(llama) -> None:
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "calling", "tool_calls": [{"name": "f", "arguments": {}}]},
        {"role": "tool", "content": "42", "loss_weight": 1},
        {"role": "assistant", "content": "It is 42.", "loss_weight": 0},
    ]
    rows, _ = format_rows([{"messages": messages}], "messages", PreprocessingConfig(), "x")

    segments = TokenizerTemplate(llama).segments(rows[0]["messages"])

    trained = [s.text for s in segments if s.trainable]
    assert trained == [
        'calling\n<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call><|im_end|>',
        "<|im_start|>user\n<tool_response>\n42\n</tool_response><|im_end|>",
    ]


# ------------------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    "turns, reason",
    [
        (
            [{"role": "user", "content": "q"}, {"role": "tool", "content": "r"}],
            "a tool result after a user turn without tool calls",
        ),
        (
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [{"name": "f", "arguments": {}}]},
                {"role": "tool", "content": "r"},
                {"role": "user", "content": "q"},
            ],
            "a user turn right after a tool result",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"arguments": {}}]}],
            "a tool call has no function name",
        ),
        (
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [{"name": "f", "arguments": "[1]"}]},
            ],
            "the arguments of tool call `f` are not a JSON object",
        ),
        (
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [{"name": "f", "arguments": "{"}]},
            ],
            "the arguments of tool call `f` is not valid JSON",
        ),
    ],
)
def test_bad_tool_rows(turns: list[dict[str, object]], reason: str) -> None:
    _, report = format_rows([{"messages": turns}], "messages", PreprocessingConfig(on_bad_rows="skip"), "x")

    assert reason in report.bad_rows[0][1]


def test_a_bad_tools_column_is_a_bad_row() -> None:
    row = {
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "tools": "{x",
    }

    _, report = format_rows([row], "messages", PreprocessingConfig(on_bad_rows="skip"), "x")

    assert report.bad_rows[0][1].startswith("the tools column is not valid JSON")


def test_a_template_that_ignores_tools_is_refused(tiny_model) -> None:
    from llmft.synth.models import CHATML_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(tiny_model("llama"))
    tokenizer.chat_template = (
        CHATML_TEMPLATE.split("{%- for message in messages -%}")[0].replace(
            "{%- if tools -%}", "{%- if false -%}"
        )
        + "{%- for message in messages -%}"
        + CHATML_TEMPLATE.split("{%- for message in messages -%}")[1]
    )
    row = _raw("tools_sharegpt.json")[0]
    messages = conversation(row["conversations"], "sharegpt")

    with pytest.raises(DataError, match="chat template ignores the `tools` column"):
        TokenizerTemplate(tokenizer).segments(messages, tools_column(row["tools"]))
    tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(DataError, match="does not render tool calls .`calculator` is missing"):
        TokenizerTemplate(tokenizer).segments(messages)


def test_alpaca_template_refuses_tool_calls() -> None:
    row = _raw("tools_sharegpt.json")[0]

    with pytest.raises(DataError, match="alpaca template has no way to show tools") as err:
        Alpaca().segments(conversation(row["conversations"], "sharegpt"))
    assert "template: chatml" in str(err.value.fix)
