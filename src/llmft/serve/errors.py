"""OpenAI's error object, for every answer that is not a success.

OpenAI clients read ``{"error": {"message", "type", "param", "code"}}`` and raise their own typed errors
from the status (``BadRequestError`` for 400, ``AuthenticationError`` for 401, ``NotFoundError`` for 404,
``RateLimitError`` for 429 ...), so a user's mistake reads as the same error it would against OpenAI, with
llmft's message in it. The statuses and types live in one table, ``KINDS``.
"""

from __future__ import annotations

from dataclasses import dataclass

# kind -> (HTTP status, OpenAI error type)
KINDS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request_error"),
    "unauthorized": (401, "invalid_request_error"),
    "not_found": (404, "invalid_request_error"),
    "method_not_allowed": (405, "invalid_request_error"),
    "too_large": (413, "invalid_request_error"),
    "busy": (429, "server_busy"),
    "internal": (500, "server_error"),
    "unavailable": (503, "server_unavailable"),
}
RETRY_AFTER_S = 1  # what a 429 or 503 asks a client to wait: a batch of a small model takes about that


@dataclass
class ApiError(Exception):
    """A request the server will not answer, with OpenAI's error fields."""

    kind: str
    message: str
    param: str | None = None
    code: str | None = None

    @property
    def status(self) -> int:
        return KINDS[self.kind][0]

    def body(self) -> dict[str, object]:
        return error_body(self.kind, self.message, self.param, self.code)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_S)} if self.status in (429, 503) else {}


def error_body(
    kind: str, message: str, param: str | None = None, code: str | None = None
) -> dict[str, object]:
    return {"error": {"message": message, "type": KINDS[kind][1], "param": param, "code": code}}


def kind_of_status(status: int) -> str:
    """The kind for an HTTP status Starlette raised itself (an unknown route, a wrong method)."""
    for kind, (known, _) in KINDS.items():
        if known == status:
            return kind
    return "invalid_request" if 400 <= status < 500 else "internal"
