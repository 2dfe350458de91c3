"""`llmft serve` under load: 32 clients at once against the same 32 requests sent one at a time, on the same
server in the same run.

A benchmark, not a test (no timing assertions anywhere): prints both wall times, tokens/s, the ratio and
what the engine did (batches, largest batch), and checks that every request was answered and that the
greedy answers agree both ways (batching must not change them).

    PYTHONPATH=src .venv/bin/python benchmarks/serve_concurrency.py [--model DIR] [--clients 32] \
        [--max-tokens 32] [--max-batch 32] [--hidden-size 256 --layers 4] [--out results.json]

Without --model a tiny Llama (random weights, its own tokenizer) is built in a temporary folder; the
prompts are the sft rows of ``llmft synth data``. A random model never emits its end-of-turn token, so
every answer runs to --max-tokens both ways alike. The server is a real `llmft serve` subprocess; the
clients are threads speaking plain HTTP (urllib), so the client side costs next to nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_model(args: argparse.Namespace, folder: Path) -> Path:
    from llmft.synth.models import build_tiny_model

    return build_tiny_model(
        "llama", folder / "model", hidden_size=args.hidden_size, num_layers=args.layers, num_heads=4
    )


def messages(count: int) -> list[list[dict[str, str]]]:
    from llmft.generate.prompts import from_raw
    from llmft.synth.data import generate_rows

    return [from_raw(r).messages or [] for r in generate_rows("sft", count, seed=1)]  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(port: int, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=3600) as answer:
        return json.loads(answer.read())


def start_server(model: Path, port: int, max_batch: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "llmft.cli.main", "serve", str(model), "--port", str(port),
               "--model-name", "bench", "--max-batch", str(max_batch), "--max-queue", "256"]  # fmt: skip
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            call(port, "/health")
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"the server exited: {log.read_text()}") from None
            time.sleep(0.2)
    raise SystemExit("the server did not come up in 600 s")


def ask(port: int, conversation: list[dict[str, str]], max_tokens: int) -> dict[str, object]:
    body = {"model": "bench", "messages": conversation, "max_tokens": max_tokens, "temperature": 0}
    return call(port, "/v1/chat/completions", body)


def timed(
    port: int, prompts: list[list[dict[str, str]]], max_tokens: int, clients: int
) -> tuple[float, list]:
    """Wall time and answers for all prompts, ``clients`` at a time (1: one after another)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        answers = list(pool.map(lambda p: ask(port, p, max_tokens), prompts))
    return time.perf_counter() - started, answers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="A run or model dir (default: a tiny Llama built here).")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--out", type=Path, help="Also write the results here as JSON.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmft-serve-bench-") as tmp:
        model = args.model or build_model(args, Path(tmp))
        port = free_port()
        server = start_server(model, port, args.max_batch, Path(tmp) / "serve.log")
        try:
            prompts = messages(args.clients)
            ask(port, prompts[0], 2)  # warm-up: first-call costs are nobody's throughput
            before = call(port, "/health")
            alone_s, alone = timed(port, prompts, args.max_tokens, clients=1)
            middle = call(port, "/health")
            together_s, together = timed(port, prompts, args.max_tokens, clients=args.clients)
            after = call(port, "/health")
        finally:
            server.terminate()
            rc = server.wait(timeout=600)
    texts = [[a["choices"][0]["message"]["content"] for a in answers] for answers in (alone, together)]  # type: ignore[index]
    tokens = sum(a["usage"]["completion_tokens"] for a in together)  # type: ignore[index]
    result = {
        "model": str(args.model or f"tiny llama hidden {args.hidden_size}, {args.layers} layers (random)"),
        "clients": args.clients,
        "max_tokens": args.max_tokens,
        "max_batch": args.max_batch,
        "answered": [len(alone), len(together)],
        "same_greedy_answers": texts[0] == texts[1],
        "one_at_a_time_s": round(alone_s, 2),
        "concurrent_s": round(together_s, 2),
        "one_at_a_time_tok_s": round(tokens / alone_s, 1),
        "concurrent_tok_s": round(tokens / together_s, 1),
        "throughput_ratio": round(alone_s / together_s, 2),
        "batches_one_at_a_time": int(middle["batches"]) - int(before["batches"]),  # type: ignore[call-overload]
        "batches_concurrent": int(after["batches"]) - int(middle["batches"]),  # type: ignore[call-overload]
        "largest_batch": after["largest_batch"],
        "server_exit_code": rc,
        "torch_threads": os.environ.get("OMP_NUM_THREADS", "default"),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
