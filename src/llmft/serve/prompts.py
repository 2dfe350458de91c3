"""A request's prompt as token ids, rendered the way the run was trained, and its answer length checked
against the model's context.

Chat messages are read by the same rules as training data (``llmft.data.conversation``: text content
parts joined, tool calls and tool results kept, non-text parts refused) and rendered by the run's chat
template with its system prompt, exactly as `llmft generate` renders a prompt: so a greedy answer here
equals `llmft generate`'s. Completions take the text as it is (the tokenizer's own special tokens added),
as OpenAI's legacy endpoint does.
"""

from __future__ import annotations

from llmft.data.conversation import BadRow, check_turn_order, conversation, tools_column
from llmft.generate.batch import prompt_ids
from llmft.generate.load import LoadedRun
from llmft.generate.prompts import Prompt
from llmft.serve.errors import ApiError

ROLE_ALIASES = {"developer": "system"}  # OpenAI's newer name for the system turn


def chat_ids(loaded: LoadedRun, messages: list[object], tools: list[object] | None) -> list[int]:
    """The chat prompt's ids, or a 400 saying what is wrong with the messages or tools."""
    if not loaded.chat:
        raise ApiError(
            "invalid_request",
            f"this model was not trained on conversations (task {loaded.task}, no chat template); "
            "use /v1/completions",
            param="messages",
        )
    renamed = [_renamed(m) for m in messages]
    try:
        turns = conversation(renamed, "messages")
        check_turn_order(turns, prompt=True)
    except BadRow as err:
        raise ApiError("invalid_request", f"messages: {err}", param="messages") from None
    try:
        schemas = tools_column(tools) if tools else None
    except BadRow as err:
        raise ApiError("invalid_request", f"tools: {err}", param="tools") from None
    prompt = Prompt(messages=turns)  # type: ignore[arg-type]
    return prompt_ids(prompt, loaded.tokenizer, chat=True, system_prompt=loaded.system_prompt, tools=schemas)  # type: ignore[arg-type]


def _renamed(message: object) -> object:
    if isinstance(message, dict) and message.get("role") in ROLE_ALIASES:
        return {**message, "role": ROLE_ALIASES[message["role"]]}
    return message


def completion_ids(loaded: LoadedRun, text: str) -> list[int]:
    return prompt_ids(Prompt(text=text), loaded.tokenizer, chat=False)


def context_length(loaded: LoadedRun) -> int | None:
    """Positions the model can attend to: its config's, else the tokenizer's (None when neither knows)."""
    config = getattr(loaded.model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_seq_len"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(loaded.tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 10**7 else None  # a huge value means "unset"


def answer_length(
    prompt: int, asked: int | None, default: int, context: int | None, prompt_param: str = "messages"
) -> int:
    """The answer's token limit: what was asked (it must fit), else the default cut to what fits.
    ``prompt_param`` names the request field a prompt too long for the context came in."""
    room = None if context is None else context - prompt
    if room is not None and room < 1:
        raise ApiError(
            "invalid_request",
            f"this model's maximum context length is {context} tokens, and the prompt alone is {prompt} "
            "tokens; shorten the prompt",
            param=prompt_param,
            code="context_length_exceeded",
        )
    if asked is None:
        return default if room is None else min(default, room)
    if room is not None and asked > room:
        raise ApiError(
            "invalid_request",
            f"this model's maximum context length is {context} tokens; you asked for {prompt + asked} "
            f"({prompt} in the prompt, {asked} for the answer); shorten the prompt or lower max_tokens",
            param="max_tokens",
            code="context_length_exceeded",
        )
    return asked
