"""Tokenized splits cached by a fingerprint of data + tokenizer + template + settings.

A second run with the same inputs skips tokenization; a change in any of them gives a new key. Stored as
numpy arrays (flat token ids + offsets) and JSON, never pickle, under ``$LLMFT_CACHE`` or
``$HF_HOME/llmft/tokenized`` (the Hugging Face cache, the one place llmft writes outside a run dir).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from llmft.data.tokenize import TokenStats

FORMAT_VERSION = 1


def cache_dir() -> Path:
    explicit = os.environ.get("LLMFT_CACHE")
    if explicit:
        return Path(explicit)
    hf_home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(hf_home) / "llmft" / "tokenized"


def tokenizer_fingerprint(tokenizer: object) -> str:
    """Everything about a tokenizer that changes token ids: class, vocabulary, special tokens, template."""
    digest = hashlib.sha256()
    digest.update(type(tokenizer).__name__.encode())
    vocab = getattr(tokenizer, "get_vocab", dict)()
    digest.update(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode())
    digest.update(
        json.dumps(getattr(tokenizer, "special_tokens_map", {}), sort_keys=True, default=str).encode()
    )
    digest.update(str(getattr(tokenizer, "chat_template", "")).encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    return digest.hexdigest()[:16]


def cache_key(*parts: object) -> str:
    text = json.dumps([FORMAT_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _pack(examples: list[dict[str, object]]) -> dict[str, np.ndarray]:
    ids = [np.asarray(e["input_ids"], dtype=np.int32) for e in examples]
    arrays = {
        "offsets": np.cumsum([0] + [len(x) for x in ids]).astype(np.int64),
        "input_ids": np.concatenate(ids) if ids else np.zeros(0, np.int32),
    }
    if examples and isinstance(examples[0]["labels"], list):
        labels = [np.asarray(e["labels"], dtype=np.int32) for e in examples]
        arrays["label_offsets"] = np.cumsum([0] + [len(x) for x in labels]).astype(np.int64)
        arrays["labels"] = np.concatenate(labels)
    else:
        arrays["labels"] = np.asarray([e["labels"] for e in examples], dtype=np.int64)
    return arrays


def _unpack(arrays: dict[str, np.ndarray]) -> list[dict[str, object]]:
    off, ids = arrays["offsets"], arrays["input_ids"]
    label_off = arrays.get("label_offsets")
    labels = arrays["labels"]
    out = []
    for i in range(len(off) - 1):
        example: dict[str, object] = {"input_ids": ids[off[i] : off[i + 1]].tolist()}
        if label_off is not None:
            example["labels"] = labels[label_off[i] : label_off[i + 1]].tolist()
        else:
            example["labels"] = int(labels[i])
        out.append(example)
    return out


def load(
    key: str,
) -> tuple[dict[str, list[dict[str, object]]], dict[str, TokenStats], dict[str, object]] | None:
    """The cached splits for ``key``, or None (absent, or written by another format version)."""
    folder = cache_dir() / key
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        examples, stats = {}, {}
        for split in meta["splits"]:
            with np.load(folder / f"{split}.npz", allow_pickle=False) as data:
                examples[split] = _unpack(dict(data))
            stats[split] = TokenStats(**meta["stats"][split])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return examples, stats, meta.get("extra", {})


def store(
    key: str,
    examples: dict[str, list[dict[str, object]]],
    stats: dict[str, TokenStats],
    extra: dict[str, object],
) -> None:
    """Write atomically (temp folder + rename); a failure to cache never fails the run."""
    root = cache_dir()
    final = root / key
    tmp = root / f".tmp-{key}-{os.getpid()}"
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        for split, rows in examples.items():
            np.savez(tmp / f"{split}.npz", **_pack(rows))
        meta = {
            "splits": list(examples),
            "extra": extra,
            "stats": {
                s: {
                    "rows": st.rows,
                    "truncated": st.truncated,
                    "dropped_too_long": st.dropped_too_long,
                    "lengths": st.lengths,
                    "trained_tokens": st.trained_tokens,
                }
                for s, st in stats.items()
            },
        }
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
