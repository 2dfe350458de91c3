"""Chat templates: a conversation becomes text segments, each marked trained-on or not.

Segments are tokenized one by one (see tokenize.py), so the loss mask follows the segment borders
exactly: by default only assistant turns (with their end-of-turn marker) carry loss. The tokenizer's own
chat template is used when it has one; otherwise a built-in one (`chatml`, `alpaca`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from llmft.errors import DataError

Message = dict[str, str]


@dataclass(frozen=True)
class Segment:
    text: str
    trainable: bool


class Template(Protocol):
    name: str

    def segments(self, messages: list[Message]) -> list[Segment]: ...


ALPACA_HEADER = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)


def _split_trailing_space(text: str, trainable: bool) -> list[Segment]:
    """Whitespace after an end-of-turn marker is layout, not something to learn."""
    body = text.rstrip()
    tail = text[len(body) :]
    out = [Segment(body, trainable)] if body else []
    if tail:
        out.append(Segment(tail, False))
    return out


@dataclass(frozen=True)
class ChatML:
    eos: str = "<|im_end|>"
    name: str = "chatml"

    def segments(self, messages: list[Message]) -> list[Segment]:
        out: list[Segment] = []
        for message in messages:
            head = f"<|im_start|>{message['role']}\n"
            if message["role"] == "assistant":
                out.append(Segment(head, False))
                out.append(Segment(f"{message['content']}{self.eos}", True))
                out.append(Segment("\n", False))
            else:
                out.append(Segment(f"{head}{message['content']}<|im_end|>\n", False))
        return out


@dataclass(frozen=True)
class Alpaca:
    eos: str = "</s>"
    name: str = "alpaca"

    def segments(self, messages: list[Message]) -> list[Segment]:
        system = next((m["content"] for m in messages if m["role"] == "system"), ALPACA_HEADER)
        out: list[Segment] = [Segment(f"{system}\n\n", False)]
        for message in messages:
            if message["role"] == "user":
                out.append(Segment(f"### Instruction:\n{message['content']}\n\n### Response:\n", False))
            elif message["role"] == "assistant":
                out.append(Segment(f"{message['content']}{self.eos}", True))
                out.append(Segment("\n\n", False))
        if out and out[-1].text == "\n\n":
            out.pop()
        return out


@dataclass
class TokenizerTemplate:
    """The tokenizer's jinja chat template, cut into segments by rendering growing prefixes."""

    tokenizer: object
    name: str = "tokenizer"

    def _render(self, messages: list[Message], generation_prompt: bool) -> str:
        from jinja2 import TemplateError

        try:
            return str(
                self.tokenizer.apply_chat_template(  # type: ignore[attr-defined]
                    messages, tokenize=False, add_generation_prompt=generation_prompt
                )
            )
        except TemplateError as err:  # e.g. a template that refuses system turns (`raise_exception`)
            roles = ", ".join(m["role"] for m in messages)
            raise DataError(
                f"the tokenizer's chat template cannot render a conversation ({roles}): {err}",
                fix="set data.preprocessing.template: chatml (or alpaca), or drop the turns it refuses "
                "(e.g. no data.preprocessing.system_prompt)",
            ) from None

    def segments(self, messages: list[Message]) -> list[Segment]:
        out: list[Segment] = []
        done = ""
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self._render(messages[:i], generation_prompt=True)
            full = self._render(messages[: i + 1], generation_prompt=False)
            if not prompt.startswith(done) or not full.startswith(prompt):
                raise DataError(
                    "the tokenizer's chat template does not render conversations by appending turns, so the "
                    "loss mask cannot be placed",
                    fix="set data.preprocessing.template: chatml (or alpaca)",
                )
            if prompt[len(done) :]:
                out.append(Segment(prompt[len(done) :], False))
            out.extend(_split_trailing_space(full[len(prompt) :], True))
            done = full
        rest = self._render(messages, generation_prompt=False)[len(done) :]
        if rest:
            out.append(Segment(rest, False))
        return out


def choose_template(name: str, tokenizer: object, data_format: str) -> Template:
    """`auto`: the tokenizer's template when it has one; else alpaca for alpaca rows, chatml otherwise."""
    has_own = bool(getattr(tokenizer, "chat_template", None))
    eos = str(getattr(tokenizer, "eos_token", None) or "")
    if name == "tokenizer" and not has_own:
        raise DataError(
            "data.preprocessing.template is `tokenizer` but the tokenizer has no chat template",
            fix="set template: chatml or alpaca, or use a tokenizer that has one",
        )
    if name == "tokenizer" or (name == "auto" and has_own):
        return TokenizerTemplate(tokenizer)
    if name == "alpaca" or (name == "auto" and data_format == "alpaca"):
        return Alpaca(eos=eos)
    vocab = getattr(tokenizer, "get_vocab", lambda: {})()
    return ChatML(eos="<|im_end|>" if "<|im_end|>" in vocab else f"<|im_end|>{eos}")


def train_all(segments: list[Segment]) -> list[Segment]:
    """`train_on_inputs: true`: every segment carries loss."""
    return [Segment(s.text, True) for s in segments]
