"""Start the server: load the run, build the engine and the app, run uvicorn until a signal.

SIGTERM (and Ctrl-C) is uvicorn's graceful shutdown: no new connections, in-flight requests get
``grace_period_s`` to finish, then the engine stops and the process exits 0. uvicorn re-raises the signal it
caught once it has shut down, so that the default action ends the process; a stop that went as planned is
not a failure, so the handlers it restores (and re-raises into) are no-ops.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmft.errors import EnvironmentProblem


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    model_name: str | None = None
    max_batch: int = 16
    max_queue: int = 64
    max_tokens: int = 256
    grace_period_s: float = 30.0
    device: str | None = None


def _import_server():  # noqa: ANN202 - the uvicorn module
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise EnvironmentProblem(
            "`llmft serve` needs FastAPI and uvicorn, which are not installed",
            fix="pip install 'llmft[serve]' (or: pip install fastapi uvicorn)",
        ) from None
    return uvicorn


def model_name_of(run: Path, given: str | None) -> str:
    return given or Path(run).resolve().name


def run_server(run: Path, options: ServeOptions, say: Callable[[str], None]) -> None:
    """Serve until SIGTERM/SIGINT; returns once in-flight requests are answered (or the grace ran out)."""
    uvicorn = _import_server()
    from llmft.generate.load import load_run
    from llmft.serve.app import Settings, create_app
    from llmft.serve.engine import Engine, Limits

    loaded = load_run(run, device=options.device)
    name = model_name_of(run, options.model_name)
    engine = Engine(loaded, Limits(max_batch=options.max_batch, max_queue=options.max_queue))
    settings = Settings(
        model_name=name,
        api_key=options.api_key,
        default_max_tokens=options.max_tokens,
        max_n=options.max_batch,
    )
    app = create_app(loaded, engine, settings)
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        timeout_graceful_shutdown=options.grace_period_s,
        log_level="warning",
    )
    say(f"serving {run} as `{name}` at http://{options.host}:{options.port}/v1 (Ctrl-C or SIGTERM stops it)")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)  # see the module docstring: what uvicorn re-raises into
    uvicorn.Server(config).run()
    say("server stopped")
