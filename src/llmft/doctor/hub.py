"""Hub checks: offline mode, the endpoint and whether it answers, and whether a token is configured.

``probe_hub`` is the doctor's only network access (``report.run_doctor`` runs it in a background thread
while the local checks run); ``check_token`` says where a token comes from, never reading the token.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmft.doctor.hf_cache import HfPaths
from llmft.doctor.result import Check, ok, warn

TRUE_VALUES = {"1", "ON", "YES", "TRUE"}  # huggingface_hub.constants.ENV_VARS_TRUE_VALUES
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
DEFAULT_ENDPOINT = "https://huggingface.co"


def is_true(value: str | None) -> bool:
    return value is not None and value.upper() in TRUE_VALUES


def hub_offline(env: Mapping[str, str]) -> bool:
    """huggingface_hub's rule: HF_HUB_OFFLINE, or the older TRANSFORMERS_OFFLINE."""
    return is_true(env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE"))


def hub_endpoint(env: Mapping[str, str]) -> str:
    try:
        from huggingface_hub import constants

        default = constants.ENDPOINT
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        default = DEFAULT_ENDPOINT
    return env.get("HF_ENDPOINT", default).rstrip("/")


def check_offline(env: Mapping[str, str]) -> Check:
    shown = ", ".join(f"{name}={env[name]}" if name in env else f"{name} unset" for name in OFFLINE_VARS)
    mode = "offline: only cached models and data sets can be used" if hub_offline(env) else "online"
    return ok("offline mode", f"{mode} ({shown})")


def probe_hub(endpoint: str, timeout: float = 2.0) -> str | None:
    """None when ``endpoint`` answers (with any HTTP status), else why not. Never raises."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(endpoint, method="HEAD", headers={"User-Agent": "llmft-doctor"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - the configured Hub endpoint
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except Exception as err:  # noqa: BLE001 - DNS, TLS, proxy, timeout: all mean "unreachable"
        reason = getattr(err, "reason", err)
        return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__


def check_hub(endpoint: str, failure: str | None, *, skipped: bool = False) -> Check:
    if skipped:
        return ok("Hub", f"not contacted ({endpoint}): offline mode or --no-network")
    if failure is None:
        return ok("Hub", f"{endpoint} reachable")
    detail = f"{endpoint} unreachable ({failure}): Hub models and data sets cannot be downloaded"
    return warn(
        "Hub", detail, "check the network or proxy (HTTPS_PROXY), or set HF_HUB_OFFLINE=1 to use the cache"
    )


def check_token(env: Mapping[str, str], paths: HfPaths) -> Check:
    """Whether a Hub token is configured, and where from. The token itself is never read."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if env.get(name, "").strip():
            return ok("Hub token", f"set (environment variable {name})")
    try:
        present = paths.token.is_file() and paths.token.stat().st_size > 0
    except OSError:
        present = False
    if present:
        return ok("Hub token", f"set (token file {paths.token})")
    return ok("Hub token", "none; only private or gated models need one (`hf auth login` or HF_TOKEN)")
