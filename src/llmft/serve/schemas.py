"""The request bodies the server takes and the response objects it returns, in OpenAI's shapes.

Requests are pydantic models that ignore fields that change nothing about the answer (``user``,
``metadata`` ...), as OpenAI clients send many; a field llmft reads is checked here, so a wrong value is a 400
naming the field. A field that would change the answer but that llmft does not implement (``logprobs``,
``response_format`` ...: the ``UNSUPPORTED`` table) is refused unless it has its neutral value: a client must
never get an answer that silently ignored what it asked for. The
defaults are OpenAI's (``temperature`` 1), not `llmft generate`'s greedy one: a client written for OpenAI
must get what it expects.
"""

from __future__ import annotations

import time
import uuid
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmft.generate.batch import Output
from llmft.serve.errors import ApiError

MAX_STOPS = 4  # OpenAI's limit on stop sequences
FINISH_REASONS = {"eos": "stop", "stop": "stop", "length": "length", "cancelled": "stop"}


class CommonRequest(BaseModel):
    """What both completion endpoints take."""

    model_config = ConfigDict(extra="ignore")

    model: str
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, ge=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: dict[str, bool] | None = None

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop sequences, got {len(value)}")
        return value

    def stops(self) -> tuple[str, ...]:
        found = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return tuple(s for s in found if s)

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    def answer_limit(self) -> int | None:
        return self.max_tokens


class ChatRequest(CommonRequest):
    messages: list[object] = Field(min_length=1)
    tools: list[object] | None = None
    max_completion_tokens: int | None = Field(None, ge=1)

    def answer_limit(self) -> int | None:
        """``max_completion_tokens`` is the newer name; either is taken."""
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(CommonRequest):
    prompt: str | list[str]

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


Request = TypeVar("Request", bound=BaseModel)

# Fields llmft does not implement -> the values that ask for nothing (OpenAI's defaults): any other is a 400.
UNSUPPORTED: dict[str, tuple[object, ...]] = {
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "response_format": (None, {"type": "text"}),
    "tool_choice": (None, "auto", "none"),
    "echo": (None, False),
    "suffix": (None, ""),
    "best_of": (None, 1),
    "logit_bias": (None, {}),
    "presence_penalty": (None, 0),
    "frequency_penalty": (None, 0),
}


def _refuse_unsupported(data: dict[str, object]) -> None:
    for name, neutral in UNSUPPORTED.items():
        if name in data and data[name] not in neutral:
            raise ApiError(
                "invalid_request",
                f"{name}: not supported by llmft serve (got {data[name]!r}); "
                f"leave it out or send {neutral[1]!r}",
                param=name,
            )


def parse(model: type[Request], data: object) -> Request:
    """The request, or a 400 naming the first wrong field, its problem and the value sent."""
    if not isinstance(data, dict):
        raise ApiError(
            "invalid_request", f"the request body must be a JSON object, got {type(data).__name__}"
        )
    _refuse_unsupported(data)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        sent = "" if first["type"] == "missing" else f" (got {first.get('input')!r})"
        message = f"{param}: {first['msg']}{sent}" if param else first["msg"]
        raise ApiError("invalid_request", message, param=param) from None


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, outputs: list[Output]) -> dict[str, int]:
    made = sum(o.new_tokens for o in outputs)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": made, "total_tokens": prompt_tokens + made}


def chat_response(rid: str, model: str, outputs: list[Output], prompt_tokens: int) -> dict[str, object]:
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": o.text},
            "finish_reason": FINISH_REASONS[o.stop_reason],
            "logprobs": None,
        }
        for i, o in enumerate(outputs)
    ]
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage(prompt_tokens, outputs),
    }


def completion_response(rid: str, model: str, outputs: list[Output], prompt_tokens: int) -> dict[str, object]:
    choices = [
        {"index": i, "text": o.text, "finish_reason": FINISH_REASONS[o.stop_reason], "logprobs": None}
        for i, o in enumerate(outputs)
    ]
    return {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage(prompt_tokens, outputs),
    }


def chunk(rid: str, model: str, chat: bool, choices: list[dict[str, object]]) -> dict[str, object]:
    """One streamed event: ``chat.completion.chunk`` with deltas, or ``text_completion`` with text."""
    return {
        "id": rid,
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }


def delta_choice(chat: bool, index: int, text: str | None, finish: str | None) -> dict[str, object]:
    """A streamed choice: a piece of text, or (``text`` None) its end with the finish reason."""
    if chat:
        delta: dict[str, object] = {} if text is None else {"content": text}
        return {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
    return {"index": index, "text": text or "", "finish_reason": finish, "logprobs": None}


def role_choice(index: int) -> dict[str, object]:
    """A chat stream's first event per choice: the assistant role, no text yet (as OpenAI sends it)."""
    return {
        "index": index,
        "delta": {"role": "assistant", "content": ""},
        "finish_reason": None,
        "logprobs": None,
    }
