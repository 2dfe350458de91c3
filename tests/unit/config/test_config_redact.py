"""Secrets never reach a file: keys ending in token/key/secret/password are masked, wherever they are."""

from __future__ import annotations

import copy

import pytest

from llmft.config.redact import MASK, is_secret_key, redact


@pytest.mark.parametrize(
    "key",
    [
        "hf_token",
        "HF_TOKEN",
        "token",
        "api_key",
        "wandb_api_key",
        "apiKey",
        "key",
        "client_secret",
        "AWS_SECRET",
        "password",
        "db_password",
        "mlflow-tracking-password",
        "authToken",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "tokenizer",
        "max_tokens",
        "num_virtual_tokens",
        "keys",
        "key_path",
        "secrets_dir",
        "passwords_file",
        "pad_token",
        "eos_token",
        "early_stopping_metric",
        "name_or_path",
        "learning_rate",
    ],
)
def test_keys_that_are_not_secrets(key: str) -> None:
    assert not is_secret_key(key)


def test_redact_masks_nested_values_and_keeps_the_rest() -> None:
    data = {
        "hf_token": "hf_abcdef",
        "tracking": {"api_key": "0123456789", "project": "demo", "report_to": ["wandb"]},
        "trials": [{"params": {"lr": 1e-4}, "secret": "s3cr3t"}, {"password": 1234}],
        "model": {"name_or_path": "gpt2", "num_virtual_tokens": 16},
        "unset_token": None,
    }
    original = copy.deepcopy(data)
    assert redact(data) == {
        "hf_token": MASK,
        "tracking": {"api_key": MASK, "project": "demo", "report_to": ["wandb"]},
        "trials": [{"params": {"lr": 1e-4}, "secret": MASK}, {"password": MASK}],
        "model": {"name_or_path": "gpt2", "num_virtual_tokens": 16},
        "unset_token": None,  # nothing to hide, and "not set" stays visible
    }
    assert data == original  # a copy: the caller's config is untouched


def test_redact_masks_passwords_in_urls() -> None:
    data = {
        "storage": "postgresql://optuna:hunter2@db.internal:5432/studies",
        "other": "sqlite:///runs/hpo.db",
    }
    assert redact(data) == {
        "storage": f"postgresql://optuna:{MASK}@db.internal:5432/studies",
        "other": "sqlite:///runs/hpo.db",
    }


def test_redacted_secret_values_do_not_survive_serialisation() -> None:
    import json

    text = json.dumps(redact({"tracking": {"api_key": "sk-live-123"}, "hf_token": "hf_xyz"}))
    assert "sk-live-123" not in text and "hf_xyz" not in text
