"""The OpenAI-compatible app through FastAPI's TestClient: every bad request is a 4xx with OpenAI's error
object naming the field; the key guards every route but /health; a full queue is a 429 with Retry-After and
a stopped engine a 503; greedy answers equal `llmft generate`'s and streamed pieces join to them."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from llmft.generate.batch import Sampling
from llmft.generate.load import load_run
from llmft.generate.prompts import Prompt
from llmft.generate.runner import generate_records
from llmft.serve.app import Settings, create_app
from llmft.serve.engine import Engine, Job, Limits

pytestmark = pytest.mark.numeric  # compares generated answers with `llmft generate`'s

USER = [{"role": "user", "content": "Hi"}]
KEY = "sk-test-key"


@pytest.fixture(scope="module")
def llama(tiny_model):
    return load_run(tiny_model("llama"), device="cpu")


def make_app(llama, limits: Limits = Limits(), **settings: object) -> tuple[object, Engine]:
    engine = Engine(llama, limits)
    return create_app(llama, engine, Settings(model_name="tiny", **settings)), engine  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client(llama):
    app, _ = make_app(llama)
    with TestClient(app) as running:  # runs the lifespan: the engine's thread starts and stops with it
        yield running


def chat(client: TestClient, **body: object):
    return client.post("/v1/chat/completions", json={"model": "tiny", "messages": USER, **body})


LONG = " ".join(["word"] * 3000)  # over the tiny model's 2048 positions however it tokenizes
BAD_REQUESTS = [
    ("not json", b"{bad", 400, None, None, "not valid JSON"),
    ("not an object", b"[1, 2]", 400, None, None, "must be a JSON object, got list"),
    ("unknown model", {"model": "gpt-9", "messages": USER}, 404, "model", "model_not_found", "`gpt-9`"),
    ("no model", {"messages": USER}, 400, "model", None, "model: Field required"),
    ("empty messages", {"model": "tiny", "messages": []}, 400, "messages", None, "at least 1 item"),
    ("assistant first", {"model": "tiny", "messages": [{"role": "assistant", "content": "a"}]}, 400,
     "messages", None, "must start with a user turn"),
    ("assistant last", {"model": "tiny", "messages": [*USER, {"role": "assistant", "content": "a"}]}, 400,
     "messages", None, "the last turn is assistant"),
    ("two users", {"model": "tiny", "messages": [*USER, *USER]}, 400, "messages", None, "two user turns"),
    ("late system", {"model": "tiny", "messages": [*USER, {"role": "system", "content": "s"}]}, 400,
     "messages", None, "a system turn after the start"),
    ("unknown role", {"model": "tiny", "messages": [{"role": "bot", "content": "a"}]}, 400, "messages", None,
     "unknown role `bot`"),
    ("image part", {"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
     400, "messages", None, "non-text part"),
    ("prompt over the context", {"model": "tiny", "messages": [{"role": "user", "content": LONG}]}, 400,
     "messages", "context_length_exceeded", "maximum context length is 2048 tokens"),
    ("answer over the context", {"model": "tiny", "messages": USER, "max_tokens": 2040}, 400, "max_tokens",
     "context_length_exceeded", "lower max_tokens"),
    ("max_tokens 0", {"model": "tiny", "messages": USER, "max_tokens": 0}, 400, "max_tokens", None,
     "greater than or equal to 1 (got 0)"),
    ("max_completion_tokens -1", {"model": "tiny", "messages": USER, "max_completion_tokens": -1}, 400,
     "max_completion_tokens", None, "(got -1)"),
    ("temperature 3", {"model": "tiny", "messages": USER, "temperature": 3}, 400, "temperature", None,
     "less than or equal to 2"),
    ("n too big", {"model": "tiny", "messages": USER, "n": 99}, 400, "n", None, "at most 16 choices"),
    ("five stops", {"model": "tiny", "messages": USER, "stop": list("abcde")}, 400, "stop", None,
     "at most 4 stop sequences"),
    ("bad tools", {"model": "tiny", "messages": USER, "tools": ["x"]}, 400, "tools", None,
     "not a list of function schemas"),
    ("logprobs", {"model": "tiny", "messages": USER, "logprobs": True}, 400, "logprobs", None,
     "logprobs: not supported by llmft serve (got True)"),
    ("json mode", {"model": "tiny", "messages": USER, "response_format": {"type": "json_object"}}, 400,
     "response_format", None, "not supported by llmft serve"),
    ("forced tool", {"model": "tiny", "messages": USER, "tool_choice": "required"}, 400, "tool_choice", None,
     "leave it out or send 'auto'"),
    ("penalty", {"model": "tiny", "messages": USER, "frequency_penalty": 0.5}, 400, "frequency_penalty", None,
     "not supported"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "param", "code", "says"), [c[1:] for c in BAD_REQUESTS],
                         ids=[c[0] for c in BAD_REQUESTS])  # fmt: skip
def test_bad_requests_get_openai_error_objects(client, body, status, param, code, says) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert says in error["message"]


def test_neutral_values_of_unimplemented_fields_are_accepted(client) -> None:
    """What OpenAI clients send by default (logprobs false, text format, auto tools) asks for nothing."""
    answer = chat(client, max_tokens=2, temperature=0, logprobs=False, response_format={"type": "text"},
                  tool_choice="auto", presence_penalty=0, user="someone")  # fmt: skip
    assert answer.status_code == 200, answer.text


def test_a_huge_body_is_refused_before_it_is_read(llama) -> None:
    app, _ = make_app(llama, max_body_bytes=1000)
    with TestClient(app) as small:
        answer = chat(small, padding="x" * 2000)
        assert answer.status_code == 413
        assert "at most 1000" in answer.json()["error"]["message"]

        def chunks():  # no Content-Length: the limit holds while reading
            yield b'{"model": "tiny", "padding": "'
            for _ in range(10):
                yield b"x" * 200
            yield b'"}'

        streamed = small.post("/v1/completions", content=chunks())
        assert streamed.status_code == 413 and "over 1000 bytes" in streamed.json()["error"]["message"]


def test_unknown_routes_and_methods_are_error_objects(client) -> None:
    assert client.get("/v1/nothing").json()["error"]["message"] == "GET /v1/nothing: Not Found"
    assert client.delete("/v1/models").status_code == 405


def test_the_api_key_guards_every_route_but_health(llama) -> None:
    app, _ = make_app(llama, api_key=KEY)
    with TestClient(app) as keyed:
        assert keyed.get("/health").status_code == 200
        for headers, says in (
            ({}, "no API key was given"),
            ({"Authorization": "Bearer nope"}, "not the server's"),
        ):
            answer = keyed.get("/v1/models", headers=headers)
            assert answer.status_code == 401 and says in answer.json()["error"]["message"]
            assert answer.json()["error"]["code"] == "invalid_api_key"
            assert chat(keyed, max_tokens=2).status_code == 401
        good = {"Authorization": f"Bearer {KEY}"}
        assert keyed.get("/v1/models", headers=good).json()["data"][0]["id"] == "tiny"


def test_a_full_queue_answers_429_with_retry_after(llama) -> None:
    app, engine = make_app(llama, Limits(max_queue=1))
    client = TestClient(app)  # no lifespan: the engine never drains its queue
    engine.submit(Job(ids=[1], max_new_tokens=1, on_done=print, on_error=print))
    answer = chat(client, max_tokens=2)
    assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
    assert answer.json()["error"]["code"] == "rate_limit_exceeded"
    engine.stop()
    closed = chat(client, max_tokens=2)
    assert closed.status_code == 503 and closed.headers["retry-after"] == "1"
    assert "shutting down" in closed.json()["error"]["message"]


PROMPTS = ["Hi", "What colour is the big sky?", "Reverse the words.\n\nred blue green"]


def test_greedy_answers_equal_llmft_generate(client, llama) -> None:
    records = generate_records(llama, [Prompt(text=p) for p in PROMPTS], Sampling(max_new_tokens=10))
    for prompt, record in zip(PROMPTS, records):
        messages = [{"role": "user", "content": prompt}]
        answer = chat(client, messages=messages, max_tokens=10, temperature=0).json()
        assert answer["choices"][0]["message"]["content"] == record["output"]
        assert answer["usage"]["completion_tokens"] == record["new_tokens"]
        assert (
            answer["choices"][0]["finish_reason"]
            == {"eos": "stop", "length": "length"}[record["stop_reason"]]
        )


def test_streamed_pieces_join_to_the_answer(client) -> None:
    plain = chat(client, max_tokens=8, temperature=0, n=2).json()
    with client.stream(
        "POST", "/v1/chat/completions",
        json={"model": "tiny", "messages": USER, "max_tokens": 8, "temperature": 0, "n": 2, "stream": True,
              "stream_options": {"include_usage": True}},
    ) as answer:  # fmt: skip
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in answer.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    texts = ["", ""]
    for event in events[:-1]:
        for choice in event["choices"]:
            texts[choice["index"]] += choice["delta"].get("content", "")
    assert texts == [c["message"]["content"] for c in plain["choices"]]
    assert events[-1]["usage"] == plain["usage"] and events[-1]["choices"] == []


def test_stop_strings_seeds_and_completions(client) -> None:
    full = chat(client, max_tokens=10, temperature=0).json()["choices"][0]["message"]["content"]
    stop = full[3:6]
    cut = chat(client, max_tokens=10, temperature=0, stop=stop).json()["choices"][0]
    assert (cut["message"]["content"], cut["finish_reason"]) == (full[: full.index(stop)], "stop")
    sampled = [chat(client, max_tokens=8, temperature=1.0, seed=3, n=3).json() for _ in range(2)]
    texts = [[c["message"]["content"] for c in s["choices"]] for s in sampled]
    assert texts[0] == texts[1] and len(set(texts[0])) > 1  # the seed repeats; the choices differ
    too_long = client.post("/v1/completions", json={"model": "tiny", "prompt": LONG})
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "prompt"
    done = client.post("/v1/completions", json={"model": "tiny", "prompt": "Once upon", "max_tokens": 4})
    assert done.json()["object"] == "text_completion" and done.json()["usage"]["completion_tokens"] == 4
