"""Requests rendered as the run renders prompts: content parts, tools, tool calls and results reach the chat
template as transformers' own ``apply_chat_template`` takes them; answer lengths fit the context."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from llmft.generate.load import load_run
from llmft.serve.errors import ApiError
from llmft.serve.prompts import answer_length, chat_ids

# A template that shows everything it is given, so a test sees what reached it (newlines as expressions:
# transformers renders templates with trim_blocks).
SHOW_ALL = (
    "{% if tools %}TOOLS {{ tools | tojson }}{{ '\\n' }}{% endif %}"
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}"
    "{% if m.get('tool_calls') %} CALLS {{ m['tool_calls'] | tojson }}{% endif %}"
    "{% if m.get('tool_call_id') %} ID {{ m['tool_call_id'] }}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
WEATHER = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture(scope="module")
def shown(tiny_model):
    loaded = load_run(tiny_model("llama"), device="cpu")
    tokenizer = copy.deepcopy(loaded.tokenizer)
    tokenizer.chat_template = SHOW_ALL
    return dataclasses.replace(loaded, tokenizer=tokenizer, system_prompt="Be brief.")


def rendered(
    loaded, messages: list[dict[str, object]], tools: list[object] | None = None
) -> tuple[list, str]:
    """transformers' own rendering: (ids, text)."""
    kw = {"tools": tools, "add_generation_prompt": True}
    tokenizer = loaded.tokenizer
    return list(tokenizer.apply_chat_template(messages, **kw)["input_ids"]), tokenizer.apply_chat_template(
        messages, tokenize=False, **kw
    )


CALL = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
PARSED = {"type": "function", "function": {"name": "weather", "arguments": {"city": "Oslo"}}, "id": "c1"}


def test_parts_tools_calls_and_results_reach_the_template(shown) -> None:
    parts = [{"type": "text", "text": "Weather"}, {"type": "text", "text": "in Oslo?"}]
    messages = [
        {"role": "developer", "content": "Use tools."},
        {"role": "user", "content": parts},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "content": "12 C", "tool_call_id": "c1"},
    ]
    ids, text = rendered(
        shown,
        [
            {"role": "system", "content": "Use tools."},
            {"role": "user", "content": "Weather\nin Oslo?"},
            {"role": "assistant", "content": "", "tool_calls": [PARSED]},
            {"role": "tool", "content": "12 C", "tool_call_id": "c1"},
        ],
        [WEATHER],
    )
    assert chat_ids(shown, messages, [WEATHER]) == ids
    assert text.startswith("TOOLS ") and '"arguments": {"city": "Oslo"}' in text and "ID c1" in text


def test_the_runs_system_prompt_comes_first_unless_the_request_has_one(shown) -> None:
    ids, text = rendered(
        shown, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    assert chat_ids(shown, [{"role": "user", "content": "Hi"}], None) == ids
    assert text == "system: Be brief.\nuser: Hi\nassistant:"
    own = [{"role": "system", "content": "Be long."}, {"role": "user", "content": "Hi"}]
    assert chat_ids(shown, own, None) == rendered(shown, own)[0]


def test_a_tool_result_without_a_call_is_refused(shown) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "12 C"}]
    with pytest.raises(ApiError, match="a tool result after a user turn without tool calls") as caught:
        chat_ids(shown, messages, None)
    assert (caught.value.status, caught.value.param) == (400, "messages")


def test_answer_lengths_fit_the_context() -> None:
    assert answer_length(prompt=10, asked=None, default=256, context=100) == 90  # the default is cut to fit
    assert answer_length(prompt=10, asked=50, default=256, context=None) == 50
    with pytest.raises(ApiError, match="you asked for 111") as caught:
        answer_length(prompt=11, asked=100, default=256, context=100)
    assert caught.value.code == "context_length_exceeded"
    with pytest.raises(ApiError, match="the prompt alone is 100 tokens") as caught:
        answer_length(prompt=100, asked=None, default=256, context=100, prompt_param="prompt")
    assert caught.value.param == "prompt"
