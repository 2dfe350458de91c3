"""Secrets never reach a file: any key ending in token/key/secret/password is masked."""

from __future__ import annotations

SECRET_SUFFIXES = ("token", "key", "secret", "password")
MASK = "***REDACTED***"
# Keys that end like a secret but hold none (config field names and counters).
NOT_SECRETS = {"loss_tokens", "max_tokens", "num_virtual_tokens", "add_eos", "early_stopping_metric"}


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered not in NOT_SECRETS and lowered.endswith(SECRET_SUFFIXES) and "tokens" not in lowered


def redact(value: object) -> object:
    """A copy of nested dicts/lists with secret values masked (None stays None: nothing to hide)."""
    if isinstance(value, dict):
        return {k: (MASK if is_secret_key(str(k)) and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
