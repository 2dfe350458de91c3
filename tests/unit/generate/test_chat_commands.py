"""`llmft chat` answers its own slash commands (/help, and a mistyped /word) instead of sending them to the
model; anything else, a line starting with `/` and holding words included, is a message. No model needed:
the generation is replaced by one that records what it was asked."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from llmft.generate import chat
from llmft.generate.batch import Output, Sampling
from llmft.generate.load import LoadedRun

HELP = (
    "commands:\n"
    "  /help    list these commands\n"
    "  /reset   start the conversation over\n"
    "  /exit    quit (or Ctrl-D)\n"
)


def talk(lines: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[str]]:
    """What the chat wrote, and the user turns the model was asked to answer."""
    asked: list[str] = []

    def fake_answer(
        loaded: LoadedRun, messages: list[dict[str, str]], sampling: Sampling, out: io.StringIO
    ) -> Output:
        asked.append(messages[-1]["content"])
        out.write("ok\n")
        return Output("ok", 1, "eos")

    monkeypatch.setattr(chat, "answer", fake_answer)
    feed = iter(lines)
    out = io.StringIO()
    loaded = LoadedRun(model=None, tokenizer=None, task="causal_lm", model_dir=Path("m"))
    chat.chat_loop(loaded, Sampling(), read=lambda _: next(feed), out=out)
    return out.getvalue(), asked


def test_help_lists_the_commands_and_is_not_sent_to_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    text, asked = talk(["/help", "/exit"], monkeypatch)
    assert asked == []
    assert text == ("chatting with m: /reset starts over, /exit quits, /help lists the commands\n" + HELP)


def test_an_unknown_command_says_so_and_a_message_with_a_slash_goes_to_the_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text, asked = talk(["/quit", "/?", "/usr/bin is a folder?", "hello", "/exit"], monkeypatch)
    assert asked == ["/usr/bin is a folder?", "hello"]
    assert "unknown command /quit; " + HELP in text and "unknown command /?; " + HELP in text
