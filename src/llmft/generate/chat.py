"""The terminal chat: multi-turn, the run's chat template, answers streamed token by token.

Each turn renders the whole conversation so far with the run's template (as training did), generates until
an end-of-turn token, and keeps the answer in the history. ``/reset`` starts over, ``/exit`` (or end of
input) quits, ``/help`` lists these. A line that is one unknown ``/word`` is answered with that list too,
not sent to the model: it is far more likely a mistyped command than a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TextIO

from llmft.errors import ModelError
from llmft.generate.batch import Output, Sampling, decode_output, generation_config, prompt_ids, stop_ids
from llmft.generate.load import LoadedRun
from llmft.generate.prompts import Message, Prompt

EXIT, RESET, HELP = "/exit", "/reset", "/help"
COMMANDS = {HELP: "list these commands", RESET: "start the conversation over", EXIT: "quit (or Ctrl-D)"}
_COMMAND_LIKE = re.compile(r"/[A-Za-z?][\w-]*")


def help_text() -> str:
    return "commands:\n" + "".join(f"  {name:<8} {what}\n" for name, what in COMMANDS.items())


class StreamWriter:
    """A ``generate`` streamer: writes each new piece of text as soon as it decodes (skipping the prompt and
    special tokens), so multi-byte characters never show half-made."""

    def __init__(self, tokenizer: object, out: TextIO, stops: set[int]) -> None:
        self.tokenizer, self.out, self.stops = tokenizer, out, stops
        self.ids: list[int] = []
        self.shown = ""
        self.prompt_seen = False

    def put(self, value: object) -> None:
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())  # type: ignore[attr-defined]
        kept = [t for t in self.ids if t not in self.stops]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)  # type: ignore[attr-defined]
        if text.endswith("\ufffd"):  # a character still being assembled from byte tokens
            return
        self.out.write(text[len(self.shown) :])
        self.out.flush()
        self.shown = text

    def end(self) -> None:
        self.out.write("\n")
        self.out.flush()


def answer(loaded: LoadedRun, messages: list[Message], sampling: Sampling, out: TextIO) -> Output:
    """Generate one assistant turn for ``messages``, streamed to ``out``."""
    import torch

    config = generation_config(loaded.model, loaded.tokenizer, sampling)
    stops = stop_ids(config)
    ids = prompt_ids(Prompt(messages=messages), loaded.tokenizer, chat=True)
    device = next(loaded.model.parameters()).device  # type: ignore[attr-defined]
    streamer = StreamWriter(loaded.tokenizer, out, stops)
    with torch.inference_mode():
        generated = loaded.model.generate(  # type: ignore[attr-defined]
            input_ids=torch.tensor([ids], device=device),
            attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=device),
            generation_config=config,
            streamer=streamer,
        )
    return decode_output(generated[0, len(ids) :].tolist(), loaded.tokenizer, stops)


def check_chat(loaded: LoadedRun) -> None:
    if not loaded.chat:
        raise ModelError(
            f"{loaded.run_dir or loaded.model_dir} was not trained on conversations (no chat template "
            f"to render turns with; task {loaded.task})",
            fix="use `llmft generate` for plain-text or seq2seq runs",
        )


def chat_loop(
    loaded: LoadedRun,
    sampling: Sampling,
    *,
    system_prompt: str | None = None,
    read: Callable[[str], str] = input,
    out: TextIO,
) -> int:
    """Talk until /exit or end of input; returns the number of answers given."""
    check_chat(loaded)
    system = system_prompt if system_prompt is not None else loaded.system_prompt
    start: list[Message] = [{"role": "system", "content": system}] if system else []
    history = list(start)
    answers = 0
    out.write(
        f"chatting with {loaded.run_dir or loaded.model_dir}: {RESET} starts over, {EXIT} quits, "
        f"{HELP} lists the commands\n"
    )
    while True:
        try:
            line = read("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            out.write("\n")
            break
        if line == EXIT:
            break
        if line == RESET:
            history = list(start)
            out.write("(conversation cleared)\n")
            continue
        if line == HELP or (_COMMAND_LIKE.fullmatch(line) and line not in COMMANDS):
            out.write(("" if line == HELP else f"unknown command {line}; ") + help_text())
            continue
        if not line:
            continue
        history.append({"role": "user", "content": line})
        out.write("assistant> ")
        out.flush()
        reply = answer(loaded, history, sampling, out)
        history.append({"role": "assistant", "content": reply.text})
        answers += 1
        if reply.stop_reason == "length":
            out.write(f"(cut off at {sampling.max_new_tokens} new tokens)\n")
    return answers
