"""The OpenAI-compatible app: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions``
and ``GET /health``, on one engine that batches what arrives together.

Every answer that is not a success is OpenAI's error object with a 4xx (the client's mistake) or 429/503
(busy, shutting down), never a traceback: bodies are read here with a size limit and parsed by
``schemas.parse``, so FastAPI's own 422 never shows. With an API key every route but /health wants
``Authorization: Bearer KEY``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from llmft.generate.load import LoadedRun
from llmft.serve import schemas
from llmft.serve.bridge import Waiter
from llmft.serve.engine import Engine
from llmft.serve.errors import ApiError, error_body, kind_of_status
from llmft.serve.prompts import answer_length, chat_ids, completion_ids, context_length

log = logging.getLogger("llmft.serve")
OPEN_PATHS = ("/health",)  # answered without the API key: a load balancer's probe has none


@dataclass(frozen=True)
class Settings:
    """What ``llmft serve`` flags set besides the engine's limits."""

    model_name: str
    api_key: str | None = None
    default_max_tokens: int = 256  # an answer's limit when the request gives none
    max_body_bytes: int = 1 << 20
    max_n: int = 16  # choices per request (each is a row of a batch)


def create_app(loaded: LoadedRun, engine: Engine, settings: Settings) -> FastAPI:
    """The app; the engine starts with it and stops after the last in-flight request (uvicorn's shutdown)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine.start()
        yield
        engine.stop(timeout=60)

    app = FastAPI(title="llmft serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    _add_error_handlers(app)
    _add_auth(app, settings.api_key)
    _add_routes(app, loaded, engine, settings)
    return app


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers())


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, err: ApiError) -> JSONResponse:
        return _error_response(err)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, err: HTTPException) -> JSONResponse:
        kind = kind_of_status(err.status_code)
        message = f"{request.method} {request.url.path}: {err.detail}"
        return JSONResponse(error_body(kind, message), status_code=err.status_code)

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        body = error_body(
            "internal", f"internal error ({type(err).__name__}); the server log has the details"
        )
        return JSONResponse(body, status_code=500)


def _add_auth(app: FastAPI, api_key: str | None) -> None:
    if api_key:
        app.add_middleware(KeyCheck, expected=f"Bearer {api_key}".encode())


class KeyCheck:
    """Every route but /health wants the key. A plain ASGI middleware, not ``@app.middleware``: Starlette's
    BaseHTTPMiddleware hides a client's disconnect from the route, and a request whose client left must
    stop its generation."""

    def __init__(self, app: ASGIApp, expected: bytes) -> None:
        self.app, self.expected = app, expected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self.expected):  # constant time: the key cannot be guessed bytewise
            await self.app(scope, receive, send)
            return
        what = "no API key was given" if not given else "the API key is not the server's"
        err = ApiError("unauthorized", f"{what}; send `Authorization: Bearer KEY`", code="invalid_api_key")
        await _error_response(err)(scope, receive, send)


async def read_json(request: Request, limit: int) -> object:
    """The body as JSON, read no further than ``limit`` bytes (413 beyond, 400 when it is not JSON)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(
            "too_large", f"the request body is {declared} bytes; this server takes at most {limit}"
        )
    body = bytearray()
    async for piece in request.stream():
        body.extend(piece)
        if len(body) > limit:
            raise ApiError("too_large", f"the request body is over {limit} bytes, the most this server takes")
    try:
        return json.loads(bytes(body))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError("invalid_request", f"the request body is not valid JSON: {err}") from None


def _check_request(req: schemas.CommonRequest, settings: Settings) -> None:
    if req.model != settings.model_name:
        raise ApiError(
            "not_found",
            f"the model `{req.model}` does not exist; this server serves `{settings.model_name}`",
            param="model",
            code="model_not_found",
        )
    if req.n > settings.max_n:
        raise ApiError("invalid_request", f"n: at most {settings.max_n} choices, got {req.n}", param="n")


def _add_routes(app: FastAPI, loaded: LoadedRun, engine: Engine, settings: Settings) -> None:
    context = context_length(loaded)

    @app.get("/health")
    async def health() -> dict[str, object]:
        return {"status": "ok", "queued": engine.queued(), **asdict(engine.stats)}

    @app.get("/v1/models")
    async def models() -> dict[str, object]:
        card = {"id": settings.model_name, "object": "model", "created": 0, "owned_by": "llmft"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> object:
        req = schemas.parse(schemas.ChatRequest, await read_json(request, settings.max_body_bytes))
        _check_request(req, settings)
        ids = chat_ids(loaded, req.messages, req.tools)
        return await _answer(request, req, ids, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request) -> object:
        req = schemas.parse(schemas.CompletionRequest, await read_json(request, settings.max_body_bytes))
        _check_request(req, settings)
        prompts = req.prompts()
        if len(prompts) != 1:
            raise ApiError("invalid_request", "prompt: give one prompt per request", param="prompt")
        return await _answer(request, req, completion_ids(loaded, prompts[0]), chat=False)

    async def _answer(request: Request, req: schemas.CommonRequest, ids: list[int], chat: bool) -> object:
        where = "messages" if chat else "prompt"
        limit = answer_length(len(ids), req.answer_limit(), settings.default_max_tokens, context, where)
        job = {
            "ids": ids, "max_new_tokens": limit, "n": req.n, "temperature": req.temperature,
            "top_p": max(req.top_p, 1e-6), "seed": req.seed, "stop": req.stops(),
        }  # fmt: skip
        waiter = Waiter(engine, job, stream=req.stream)
        rid = schemas.new_id("chatcmpl" if chat else "cmpl")
        if req.stream:
            events = _sse(waiter, rid, settings.model_name, chat, len(ids) if req.include_usage() else None)
            return StreamingResponse(
                events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
            )
        outputs = await waiter.result(request.is_disconnected)
        build = schemas.chat_response if chat else schemas.completion_response
        return build(rid, settings.model_name, outputs, len(ids))


def _data(payload: object) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _sse(
    waiter: Waiter, rid: str, model: str, chat: bool, usage_prompt: int | None
) -> AsyncIterator[str]:
    """Server-sent events: a role delta per choice (chat), text pieces, each choice's finish reason, the
    usage when asked for, then ``data: [DONE]``. A failure after the first byte ends the stream with an
    error event: the status line is already sent."""
    if chat:
        for i in range(waiter.job.n):
            yield _data(schemas.chunk(rid, model, chat, [schemas.role_choice(i)]))
    try:
        async for event in waiter.stream():
            if event.kind == "text":
                yield _data(
                    schemas.chunk(
                        rid, model, chat, [schemas.delta_choice(chat, event.index, event.text, None)]
                    )
                )
                continue
            outputs = event.outputs or []
            for i, output in enumerate(outputs):
                finish = schemas.FINISH_REASONS[output.stop_reason]
                yield _data(schemas.chunk(rid, model, chat, [schemas.delta_choice(chat, i, None, finish)]))
            if usage_prompt is not None:
                yield _data(
                    {**schemas.chunk(rid, model, chat, []), "usage": schemas.usage(usage_prompt, outputs)}
                )
    except ApiError as err:
        yield _data(err.body())
    yield "data: [DONE]\n\n"
