"""Secrets never reach a file: any key ending in token/key/secret/password is masked.

The rule is a plain suffix (`hf_token`, `apiKey`, `wandb_api_key`, `db_password`): it masks a harmless
`monkey` too, which is the right way to be wrong. Passwords inside URLs (an Optuna storage such as
``postgresql://user:pw@host/db``) are masked as well.
"""

from __future__ import annotations

import re

SECRET_SUFFIXES = ("token", "key", "secret", "password")
MASK = "***REDACTED***"
# Keys that end like a secret but hold none: a tokenizer's special tokens are vocabulary, not credentials.
NOT_SECRETS = {"pad_token", "eos_token", "bos_token", "unk_token", "sep_token", "cls_token", "mask_token"}
_URL_PASSWORD = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/@:\s]*:)([^/@\s]+)(@)")


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered not in NOT_SECRETS and lowered.endswith(SECRET_SUFFIXES)


def redact(value: object) -> object:
    """A copy of nested dicts/lists with secret values masked (None stays None: nothing to hide)."""
    if isinstance(value, dict):
        return {k: (MASK if is_secret_key(str(k)) and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", value)
    return value
