"""`llmft serve` as a user runs it: a subprocess on a free port serving a tiny trained run, spoken to by the
official `openai` client (plain, streamed, n > 1, stop) and by curl. Greedy answers equal `llmft generate`'s
for the same prompts; mistakes come back as the openai client's typed errors; requests sent together are
batched; SIGTERM during a request lets it finish, then the server exits 0."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.integration.cli_process import HANG_GUARD_S, CliProcess

from llmft.config.load import load_config
from llmft.pipeline import run

openai = pytest.importorskip("openai", reason="the `test` extra installs openai; the client is the reference")

pytestmark = [pytest.mark.slow, pytest.mark.numeric]  # trains a run, starts servers; compares answers
REPO = Path(__file__).resolve().parents[2]
KEY = "sk-llmft-test"
NAME = "tiny-chat"
PROMPTS = ["Reverse the words.\n\nred blue green", "What is the first word?\n\ncat dog", "Hi"]


class ServeProcess(CliProcess):
    def command(self, config: Path, extra: tuple[str, ...]) -> list[str]:
        return [sys.executable, "-m", "llmft.cli.main", "serve", str(config), *extra]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "LLMFT_API_KEY": KEY}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            return json.loads(answer.read())
    except OSError:
        return None


def start(run_dir: Path, log: Path, *extra: str) -> tuple[ServeProcess, int]:
    port = free_port()
    server = ServeProcess(
        run_dir,
        log,
        "--port",
        str(port),
        "--model-name",
        NAME,
        *extra,
        env=env(),
        cwd=REPO,
        timeout=HANG_GUARD_S,
    )
    assert server.wait_for(lambda: health(port) is not None), log.read_text()
    return server, port


@pytest.fixture(scope="module")
def run_dir(tiny_model, synth_data, tmp_path_factory) -> Path:
    """One short epoch of the quickstart config with a LoRA adapter and a system prompt: a real run dir (an
    adapter on its base). The learning rate is tiny so that answers stay the random base's long ones (a few
    full-model steps teach it to end every answer at once, and empty answers would test nothing)."""
    files = synth_data("sft", rows=64)
    out = tmp_path_factory.mktemp("serve")
    shutil.copytree(tiny_model("llama"), out / "base")
    overrides = [
        f"output_dir={out / 'run'}",
        f"model.name_or_path={out / 'base'}",
        *(f"data.dataset.{split}_file={path}" for split, path in files.items()),
        "training.epochs=1",  # 64 rows: a few steps
        "model.adapter.type=lora",
        "training.learning_rate=1e-6",
        "training.eval_strategy=no",
        "data.preprocessing.system_prompt=Answer briefly.",
    ]
    run(load_config(REPO / "configs" / "quickstart.yaml", overrides), say=lambda _: None, progress=False)
    return out / "run"


@pytest.fixture(scope="module")
def server(run_dir, tmp_path_factory) -> Iterator[int]:
    process, port = start(run_dir, tmp_path_factory.mktemp("serve-log") / "serve.log", "--max-batch", "8")
    yield port
    process.proc.send_signal(signal.SIGTERM)
    rc, output = process.finish()
    assert rc == 0, output


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{server}/v1", api_key=KEY, max_retries=0)


def ask(client, prompt: str, **kw: object):
    return client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": prompt}], **kw)


def test_greedy_answers_equal_llmft_generate(client, run_dir: Path) -> None:
    args = [arg for p in PROMPTS for arg in ("--prompt", p)]
    proc = subprocess.run(
        [sys.executable, "-m", "llmft.cli.main", "generate", str(run_dir), *args, "--max-new-tokens=12",
         "-q"],
        capture_output=True, text=True, env=env(), cwd=REPO, timeout=HANG_GUARD_S,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    answers = [ask(client, p, max_tokens=12, temperature=0) for p in PROMPTS]
    assert [a.choices[0].message.content for a in answers] == [r["output"] for r in records]
    assert all(r["output"] for r in records)
    assert [a.usage.completion_tokens for a in answers] == [r["new_tokens"] for r in records]


def test_openai_client_plain_streamed_n_and_stop(client) -> None:
    assert [m.id for m in client.models.list()] == [NAME]
    plain = ask(client, PROMPTS[0], max_tokens=10, temperature=0)
    text = plain.choices[0].message.content
    assert plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens
    pieces = [
        event.choices[0].delta.content or ""
        for event in ask(client, PROMPTS[0], max_tokens=10, temperature=0, stream=True)
        if event.choices
    ]
    assert "".join(pieces) == text and len([p for p in pieces if p]) > 1
    several = ask(client, PROMPTS[1], max_tokens=8, temperature=1.0, n=3, seed=11)
    assert [c.index for c in several.choices] == [0, 1, 2]
    assert len({c.message.content for c in several.choices}) > 1
    stop = text[4:7]
    cut = ask(client, PROMPTS[0], max_tokens=10, temperature=0, stop=[stop, "never there"])
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    legacy = client.completions.create(model=NAME, prompt="Once upon a time", max_tokens=4, temperature=0)
    assert legacy.usage.completion_tokens == 4 and legacy.choices[0].finish_reason == "length"


def test_mistakes_are_the_clients_typed_errors(client, server) -> None:
    stranger = openai.OpenAI(base_url=f"http://127.0.0.1:{server}/v1", api_key="sk-wrong", max_retries=0)
    mistakes = [
        (lambda: ask(client, "Hi", max_tokens=0), openai.BadRequestError, None, "max_tokens"),
        (lambda: ask(client, " ".join(["word"] * 3000)), openai.BadRequestError, "context_length_exceeded",
         "maximum context length is 2048"),
        (lambda: client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]),
         openai.NotFoundError, "model_not_found", "`gpt-4o` does not exist"),
        (lambda: stranger.models.list(), openai.AuthenticationError, "invalid_api_key", "not the server's"),
    ]  # fmt: skip
    for call, error, code, says in mistakes:
        with pytest.raises(error, match=says) as caught:
            call()
        assert caught.value.code == code


def curl(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "-N", f"http://127.0.0.1:{port}/v1/chat/completions",
         "-H", f"Authorization: Bearer {KEY}", "-H", "Content-Type: application/json", *args],
        capture_output=True, text=True, timeout=HANG_GUARD_S,
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_plain_streamed_and_malformed(client, server) -> None:
    body = {
        "model": NAME,
        "messages": [{"role": "user", "content": PROMPTS[2]}],
        "max_tokens": 6,
        "temperature": 0,
    }
    plain = json.loads(curl(server, "-d", json.dumps(body)).stdout)
    assert (
        plain["choices"][0]["message"]["content"]
        == ask(client, PROMPTS[2], max_tokens=6, temperature=0).choices[0].message.content
    )
    lines = [
        line for line in curl(server, "-d", json.dumps({**body, "stream": True})).stdout.splitlines() if line
    ]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)
    bad = curl(server, "-d", "{not json", "-w", "\n%{http_code}").stdout.splitlines()
    assert bad[-1] == "400" and json.loads(bad[0])["error"]["type"] == "invalid_request_error"


def test_requests_sent_together_are_batched(client, server) -> None:
    before = health(server)
    answers: list[object] = [None] * 8

    def one(i: int) -> None:
        answers[i] = ask(client, PROMPTS[i % 3], max_tokens=16, temperature=0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_GUARD_S)
    texts = [a.choices[0].message.content for a in answers]  # type: ignore[attr-defined]
    assert texts[:3] == texts[3:6] and texts[6:] == texts[:2]  # batching does not change greedy answers
    after = health(server)
    assert after is not None and before is not None
    assert after["rows"] - before["rows"] == 8 and after["batches"] - before["batches"] < 8  # type: ignore[operator]


def stat(port: int, name: str) -> int:
    found = health(port)
    assert found is not None
    return int(found[name])  # type: ignore[call-overload]


def hang_up_once_generating(port: int, stream: bool) -> None:
    """Send a long request (1500 tokens: minutes here) on a plain socket and close it once its batch runs."""
    messages = [{"role": "user", "content": PROMPTS[0]}]
    body = json.dumps(
        {"model": NAME, "messages": messages, "max_tokens": 1500, "temperature": 0, "stream": stream}
    )
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    rows = stat(port, "rows")
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall((head + body).encode())
        assert wait(lambda: stat(port, "generating") > 0 or stat(port, "rows") > rows)
    assert wait(lambda: stat(port, "generating") == 0)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "plain"])
def test_a_client_that_leaves_stops_its_generation(server, stream: bool) -> None:
    """Without cancellation the batch would run to the end and count nothing cancelled: a failure, not a
    hang."""
    cancelled = stat(server, "cancelled")
    hang_up_once_generating(server, stream)
    assert stat(server, "cancelled") == cancelled + 1


def wait(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(
    client, run_dir: Path, tmp_path: Path
) -> None:
    whole = ask(client, PROMPTS[0], max_tokens=40, temperature=0).choices[0].message.content
    process, port = start(run_dir, tmp_path / "serve.log", "--grace-period", "600")
    own = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0)
    stream = ask(own, PROMPTS[0], max_tokens=40, temperature=0, stream=True)
    first = next(iter(stream))  # generation has begun
    process.proc.send_signal(signal.SIGTERM)
    rest = [event.choices[0] for event in stream if event.choices]
    assert first.choices[0].delta.role == "assistant"
    assert rest[-1].finish_reason in ("length", "stop")
    assert "".join(choice.delta.content or "" for choice in rest) == whole  # answered in full
    rc, output = process.finish()
    assert rc == 0, output
    assert "server stopped" in output and health(port) is None
