"""The loss mask. On real alpaca rows, the tokens that carry loss decode to exactly the responses, with the
tiny Llama tokenizer's own chat template and with the built-in alpaca template on GPT-2; multi-turn
conversations train every assistant turn and nothing else; `train_on_inputs` trains everything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from llmft.config.schema import PreprocessingConfig
from llmft.data.formats import format_rows
from llmft.data.templates import Alpaca, ChatML, Segment, TokenizerTemplate, choose_template, train_all
from llmft.data.tokenize import IGNORE, encode_conversation
from llmft.errors import DataError

CONVERSATION = [
    {"role": "system", "content": "You answer in one word."},
    {"role": "user", "content": "Colour of the sky?"},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "And grass?"},
    {"role": "assistant", "content": "Green."},
    {"role": "user", "content": "Snow?"},
    {"role": "assistant", "content": "White."},
]
ANSWERS = [m["content"] for m in CONVERSATION if m["role"] == "assistant"]


@pytest.fixture(scope="module")
def llama(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model("llama"))


@pytest.fixture(scope="module")
def gpt2(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model("gpt2"))


@pytest.fixture(scope="module")
def alpaca_rows(shared_data_dir: Path) -> list[tuple[str, list[dict[str, str]]]]:
    """(response, canonical messages) for real rows of the demo set, plus identity.json's."""
    raw = json.loads((shared_data_dir / "alpaca_en_demo.json").read_text(encoding="utf-8"))[::4]
    raw += json.loads((shared_data_dir / "identity.json").read_text(encoding="utf-8"))
    rows, report = format_rows(raw, "alpaca", PreprocessingConfig(), "alpaca_en_demo.json")
    assert report.kept == len(raw) > 250
    return [(r["output"], row["messages"]) for r, row in zip(raw, rows, strict=True)]


def _trained_spans(ids: list[int], labels: list[int]) -> list[list[int]]:
    """Runs of consecutive tokens that carry loss."""
    spans: list[list[int]] = []
    previous = IGNORE
    for token, label in zip(ids, labels, strict=True):
        if label != IGNORE:
            if previous == IGNORE:
                spans.append([])
            spans[-1].append(token)
        previous = label
    return spans


def _trained_text(tokenizer, ids: list[int], labels: list[int]) -> list[str]:
    return [tokenizer.decode(span, skip_special_tokens=True) for span in _trained_spans(ids, labels)]


# ------------------------------------------------------------------------------------- real alpaca rows
def test_llama_chat_template_trains_exactly_the_responses(llama, alpaca_rows) -> None:
    template = choose_template("auto", llama, "alpaca")
    assert isinstance(template, TokenizerTemplate)
    end_of_turn = llama.convert_tokens_to_ids("<|im_end|>")

    for response, messages in alpaca_rows:
        ids, labels = encode_conversation(messages, llama, template, train_on_inputs=False)
        trained = [t for t in labels if t != IGNORE]
        assert llama.decode(trained, skip_special_tokens=True) == response
        assert trained[-1] == end_of_turn  # the model learns to stop
        assert ids[0] == llama.bos_token_id and labels[0] == IGNORE
        assert [t for t, label in zip(ids, labels, strict=True) if label != IGNORE] == trained


@pytest.mark.parametrize("name", ["alpaca", "auto"])
def test_builtin_alpaca_template_on_gpt2_trains_exactly_the_responses(name: str, gpt2, alpaca_rows) -> None:
    template = choose_template(name, gpt2, "alpaca")
    assert isinstance(template, Alpaca)

    for response, messages in alpaca_rows:
        ids, labels = encode_conversation(messages, gpt2, template, train_on_inputs=False)
        trained = [t for t in labels if t != IGNORE]
        assert gpt2.decode(trained, skip_special_tokens=True) == response
        assert trained[-1] == gpt2.eos_token_id
        assert len(_trained_spans(ids, labels)) == 1


def test_the_segments_render_the_tokenizers_own_template(llama, alpaca_rows) -> None:
    template = TokenizerTemplate(llama)

    for _, messages in alpaca_rows[:20]:
        text = "".join(s.text for s in template.segments(messages))
        assert text == llama.apply_chat_template(messages, tokenize=False)
        ids, _ = encode_conversation(messages, llama, template, train_on_inputs=False)
        assert ids == llama(text)["input_ids"]


def test_alpaca_template_text() -> None:
    messages = [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "hi"}]

    segments = Alpaca(eos="</s>").segments(messages)

    assert "".join(s.text for s in segments) == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\nSay hi.\n\n### Response:\nhi</s>"
    )
    assert [s.text for s in segments if s.trainable] == ["hi</s>"]
    system = Alpaca().segments([{"role": "system", "content": "Be terse."}, *messages])
    assert system[0] == Segment("Be terse.\n\n", False)


# ------------------------------------------------------------------------------------------- train_on_inputs
@pytest.mark.parametrize("arch, name", [("llama", "auto"), ("gpt2", "alpaca"), ("gpt2", "chatml")])
def test_train_on_inputs_trains_every_token(arch: str, name: str, llama, gpt2, alpaca_rows) -> None:
    tokenizer = llama if arch == "llama" else gpt2
    template = choose_template(name, tokenizer, "alpaca")

    for _, messages in alpaca_rows[:25]:
        ids, labels = encode_conversation(messages, tokenizer, template, train_on_inputs=True)
        # A leading BOS may stay masked: label 0 is never a prediction target after the shift.
        start = 1 if ids[0] == tokenizer.bos_token_id and arch == "llama" else 0
        assert labels[start:] == ids[start:]


def test_train_all_marks_every_segment() -> None:
    segments = [Segment("a", False), Segment("b", True)]

    assert train_all(segments) == [Segment("a", True), Segment("b", True)]


# ------------------------------------------------------------------------------------------------ multi-turn
def test_multi_turn_trains_every_assistant_turn_with_the_chat_template(llama) -> None:
    ids, labels = encode_conversation(CONVERSATION, llama, TokenizerTemplate(llama), train_on_inputs=False)

    assert _trained_text(llama, ids, labels) == ANSWERS
    masked = llama.decode([t for t, label in zip(ids, labels, strict=True) if label == IGNORE])
    for message in CONVERSATION:
        if message["role"] != "assistant":
            assert message["content"] in masked


@pytest.mark.parametrize("template", [Alpaca(eos="<|endoftext|>"), ChatML(eos="<|im_end|><|endoftext|>")])
def test_multi_turn_with_the_builtin_templates(template, gpt2) -> None:
    ids, labels = encode_conversation(CONVERSATION, gpt2, template, train_on_inputs=False)

    end = "<|im_end|>" if isinstance(template, ChatML) else ""  # not a gpt2 token: learned as text
    assert _trained_text(gpt2, ids, labels) == [answer + end for answer in ANSWERS]


def test_chatml_uses_the_tokenizers_end_of_turn_token_when_it_has_one(llama, gpt2) -> None:
    messages = CONVERSATION[1:3]

    assert choose_template("chatml", llama, "messages") == ChatML(eos="<|im_end|>")
    assert choose_template("chatml", gpt2, "messages") == ChatML(eos="<|im_end|><|endoftext|>")
    segments = ChatML().segments(messages)
    assert [s.text for s in segments if s.trainable] == ["Blue.<|im_end|>"]
    assert "".join(s.text for s in segments) == (
        "<|im_start|>user\nColour of the sky?<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n"
    )


def test_a_trailing_user_turn_is_not_trained(llama) -> None:
    messages = [*CONVERSATION[1:3], {"role": "user", "content": "Thanks!"}]

    ids, labels = encode_conversation(messages, llama, TokenizerTemplate(llama), train_on_inputs=False)

    assert _trained_text(llama, ids, labels) == ["Blue."]
    assert "Thanks!" in llama.decode(ids)


# ------------------------------------------------------------------------------------------- choosing one
def test_choose_template(llama, gpt2) -> None:
    assert isinstance(choose_template("auto", llama, "messages"), TokenizerTemplate)
    assert isinstance(choose_template("tokenizer", llama, "alpaca"), TokenizerTemplate)
    assert isinstance(choose_template("auto", gpt2, "alpaca"), Alpaca)
    assert isinstance(choose_template("auto", gpt2, "sharegpt"), ChatML)
    assert isinstance(choose_template("alpaca", llama, "messages"), Alpaca)
    assert choose_template("alpaca", gpt2, "messages") == Alpaca(eos="<|endoftext|>")


def test_tokenizer_template_without_one_is_an_error(gpt2) -> None:
    with pytest.raises(DataError, match="template is `tokenizer` but the tokenizer has no chat template"):
        choose_template("tokenizer", gpt2, "messages")


class _ReversingTokenizer:
    """A chat template that renders turns newest first, so a conversation is not built by appending."""

    chat_template = "reversed"

    def apply_chat_template(self, messages, tokenize: bool, add_generation_prompt: bool) -> str:
        text = "".join(f"[{m['role']}] {m['content']}\n" for m in reversed(messages))
        return text + ("[assistant] " if add_generation_prompt else "")


def test_a_template_that_does_not_append_turns_is_refused() -> None:
    with pytest.raises(DataError, match="does not render conversations by appending turns") as err:
        TokenizerTemplate(_ReversingTokenizer()).segments(CONVERSATION)
    assert "template: chatml" in str(err.value.fix)


def test_a_template_that_refuses_a_conversation_is_a_data_error(tiny_model) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model("llama"))
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}{{ m['content'] }}{% endfor %}"
    )

    expected = "chat template cannot render a conversation .*System role not supported"
    with pytest.raises(DataError, match=expected):
        TokenizerTemplate(tokenizer).segments(CONVERSATION)
