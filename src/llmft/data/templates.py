"""Chat templates: a conversation becomes text segments, each marked trained-on or not.

Segments are tokenized one by one (see tokenize.py), so the loss mask follows the segment borders
exactly: by default only assistant turns (with their end-of-turn marker, and their tool calls) carry loss;
a turn's ``loss_weight`` (0 or 1) overrides that. The tokenizer's own chat template is used when it has one;
otherwise a built-in one (`chatml`, which renders tools and tool calls as Qwen2.5 does, or `alpaca`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from llmft.errors import DataError

Message = dict[str, object]
Tools = list[object] | None


@dataclass(frozen=True)
class Segment:
    text: str
    trainable: bool


class Template(Protocol):
    name: str

    def segments(self, messages: list[Message], tools: Tools = None) -> list[Segment]: ...


ALPACA_HEADER = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)


def carries_loss(message: Message) -> bool:
    """A turn's `loss_weight` when it has one, else: assistant turns only."""
    weight = message.get("loss_weight")
    return bool(weight) if weight is not None else message["role"] == "assistant"


def _split_trailing_space(text: str, trainable: bool) -> list[Segment]:
    """Whitespace after an end-of-turn marker is layout, not something to learn."""
    body = text.rstrip()
    tail = text[len(body) :]
    out = [Segment(body, trainable)] if body else []
    if tail:
        out.append(Segment(tail, False))
    return out


# ------------------------------------------------------------------------ tools, as Qwen2.5 renders them
TOOLS_INTRO = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_OUTRO = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
    "<args-json-object>}\n</tool_call>"
)


def _tojson(value: object) -> str:
    """transformers' `tojson` filter (json.dumps, non-ASCII kept), so text matches jinja templates."""
    return json.dumps(value, ensure_ascii=False)


def tools_system_text(system: str | None, tools: list[object]) -> str:
    """The system turn's text when tools are given: the system message, then the tool signatures."""
    listing = "".join("\n" + _tojson(tool) for tool in tools)
    return (f"{system}\n\n" if system else "") + TOOLS_INTRO + listing + TOOLS_OUTRO


def tool_calls_text(message: Message) -> str:
    """An assistant turn's text after its header: the content, then each call in <tool_call> tags."""
    text = f"\n{message['content']}" if message["content"] else ""
    for call in message.get("tool_calls") or []:  # type: ignore[attr-defined]
        name, arguments = call["function"]["name"], _tojson(call["function"]["arguments"])
        text += f'\n<tool_call>\n{{"name": "{name}", "arguments": {arguments}}}\n</tool_call>'

    return text[1:]


def _has_tool_parts(messages: list[Message], tools: Tools) -> bool:
    return bool(tools) or any(m["role"] == "tool" or m.get("tool_calls") for m in messages)


@dataclass(frozen=True)
class ChatML:
    eos: str = "<|im_end|>"
    name: str = "chatml"

    def segments(self, messages: list[Message], tools: Tools = None) -> list[Segment]:
        out: list[Segment] = []
        if tools:  # the system turn (or one of its own) carries the tool signatures
            system = messages[0] if messages[0]["role"] == "system" else None
            text = tools_system_text(str(system["content"]) if system else None, tools)
            trained = bool(system and carries_loss(system))
            out.append(Segment(f"<|im_start|>system\n{text}<|im_end|>\n", trained))
            messages = messages[1:] if system else messages
        for i, message in enumerate(messages):
            if message["role"] == "tool":
                out.extend(_split_trailing_space(self._tool_result(messages, i), carries_loss(message)))
            elif message["role"] == "assistant":
                body = tool_calls_text(message) if message.get("tool_calls") else message["content"]
                out.append(Segment("<|im_start|>assistant\n", False))
                out.append(Segment(f"{body}{self.eos}", carries_loss(message)))
                out.append(Segment("\n", False))
            else:  # a prompt turn; with loss_weight 1 the whole turn is trained, as with a tokenizer template
                text = f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>"
                out.extend([Segment(text, carries_loss(message)), Segment("\n", False)])
        return out

    @staticmethod
    def _tool_result(messages: list[Message], i: int) -> str:
        """Consecutive tool results share one user turn, as in Qwen2.5's template."""
        opening = "" if i and messages[i - 1]["role"] == "tool" else "<|im_start|>user"
        closing = "" if i + 1 < len(messages) and messages[i + 1]["role"] == "tool" else "<|im_end|>\n"
        return f"{opening}\n<tool_response>\n{messages[i]['content']}\n</tool_response>{closing}"


@dataclass(frozen=True)
class Alpaca:
    eos: str = "</s>"
    name: str = "alpaca"

    def segments(self, messages: list[Message], tools: Tools = None) -> list[Segment]:
        if _has_tool_parts(messages, tools):
            raise DataError(
                "the alpaca template has no way to show tools, tool calls or tool results",
                fix="set data.preprocessing.template: chatml (or `tokenizer` if its template takes tools)",
            )
        system = next((m["content"] for m in messages if m["role"] == "system"), ALPACA_HEADER)
        out: list[Segment] = [Segment(f"{system}\n\n", False)]
        for message in messages:
            if message["role"] == "user":
                text = f"### Instruction:\n{message['content']}\n\n### Response:\n"
                out.append(Segment(text, carries_loss(message)))
            elif message["role"] == "assistant":
                out.append(Segment(f"{message['content']}{self.eos}", carries_loss(message)))
                out.append(Segment("\n\n", False))
        if out and out[-1].text == "\n\n":
            out.pop()
        return out


@dataclass
class TokenizerTemplate:
    """The tokenizer's jinja chat template, cut into segments by rendering growing prefixes."""

    tokenizer: object
    name: str = "tokenizer"

    def _render(self, messages: list[Message], generation_prompt: bool, tools: Tools) -> str:
        from jinja2 import TemplateError

        plain = [{k: v for k, v in m.items() if k != "loss_weight"} for m in messages]
        extra = {"tools": tools} if tools else {}
        try:
            return str(
                self.tokenizer.apply_chat_template(  # type: ignore[attr-defined]
                    plain, tokenize=False, add_generation_prompt=generation_prompt, **extra
                )
            )
        except TemplateError as err:  # e.g. a template that refuses system turns (`raise_exception`)
            roles = ", ".join(str(m["role"]) for m in messages)
            raise DataError(
                f"the tokenizer's chat template cannot render a conversation ({roles}): {err}",
                fix="set data.preprocessing.template: chatml (or alpaca), or drop the turns it refuses "
                "(e.g. no data.preprocessing.system_prompt)",
            ) from None

    def segments(self, messages: list[Message], tools: Tools = None) -> list[Segment]:
        out: list[Segment] = []
        done = ""
        for i, message in enumerate(messages):
            if not carries_loss(message):
                continue
            assistant = message["role"] == "assistant"
            prompt = self._render(messages[:i], assistant, tools) if i or assistant else ""
            full = self._render(messages[: i + 1], False, tools)
            if not prompt.startswith(done) or not full.startswith(prompt):
                raise DataError(
                    "the tokenizer's chat template does not render conversations by appending turns, so the "
                    "loss mask cannot be placed",
                    fix="set data.preprocessing.template: chatml (or alpaca)",
                )
            _check_calls_shown(message, full[len(prompt) :])
            if prompt[len(done) :]:
                out.append(Segment(prompt[len(done) :], False))
            out.extend(_split_trailing_space(full[len(prompt) :], True))
            done = full
        whole = self._render(messages, False, tools)
        if tools and whole == self._render(messages, False, None):
            _refuse_ignored_tools()
        if whole[len(done) :]:
            out.append(Segment(whole[len(done) :], False))
        return out


def _check_calls_shown(message: Message, text: str) -> None:
    """A template that ignores `tool_calls` would train the model to answer with nothing."""
    for call in message.get("tool_calls") or []:  # type: ignore[attr-defined]
        if call["function"]["name"] not in text:
            raise DataError(
                f"the tokenizer's chat template does not render tool calls (`{call['function']['name']}` "
                "is missing from the assistant turn)",
                fix="set data.preprocessing.template: chatml, or use a tokenizer whose template takes tools",
            )


def _refuse_ignored_tools() -> None:
    """A template that ignores `tools` would train calls to functions the prompt never offered."""
    raise DataError(
        "the tokenizer's chat template ignores the `tools` column (it renders the same text without it)",
        fix="set data.preprocessing.template: chatml, or use a tokenizer whose template takes tools",
    )


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
