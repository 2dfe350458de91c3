"""The tokenizer as GGUF metadata: vocabulary, merges, token kinds, special ids and the chat template.

A GGUF carries no ``tokenizer.json``; readers rebuild the tokenizer from these keys, choosing the text
splitting by name (``tokenizer.ggml.pre``). So only tokenizers whose splitting has a name both llama.cpp
and transformers' GGUF reader know are written; any other is refused, since a file that tokenizes
differently gives a model that quietly sees other ids than it was trained on.

Written: byte-level BPE (GPT-2, Llama 3, Qwen2 and llmft's tiny models), with the GPT-2, Llama 3 and
Qwen2 splitting rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmft.errors import ExportError

if TYPE_CHECKING:  # pragma: no cover
    from gguf import GGUFWriter
    from transformers import PreTrainedTokenizerBase

WHERE = "tokenizer"
# Token kinds as llama.cpp numbers them (gguf.TokenType).
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5
# llama.cpp's name for a splitting rule (Split pre-tokenizer regex before a byte-level step).
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@dataclass
class TokenizerMeta:
    """Everything written under ``tokenizer.*``."""

    pre: str
    tokens: list[str]
    types: list[int]
    merges: list[str]
    special_ids: dict[str, int]
    add_bos: bool
    add_eos: bool
    add_prefix_space: bool
    chat_template: str | None
    end_of_turn: int | None
    notes: list[str]


def tokenizer_meta(tokenizer: PreTrainedTokenizerBase, rows: int, stop_ids: list[int]) -> TokenizerMeta:
    """Describe ``tokenizer`` for a model with ``rows`` embedding rows; ``stop_ids`` are its generation
    config's end ids (one beyond EOS is the chat's end-of-turn token)."""
    spec = _backend_json(tokenizer)
    pre, notes = _pre_tokenizer(spec)
    tokens, types = _vocabulary(tokenizer, spec, rows)
    merges = _merges(spec)
    if not merges:
        raise ExportError(
            "the tokenizer is byte-level BPE without any merges: a GGUF cannot carry an empty merge list "
            "(the gguf writer refuses empty arrays) and readers need that list to rebuild the tokenizer",
            fix="use `llmft merge` for this model",
            where=WHERE,
        )
    ids = {
        name: int(getattr(tokenizer, f"{name}_token_id"))
        for name in ("bos", "eos", "unk", "pad")
        if getattr(tokenizer, f"{name}_token_id", None) is not None
    }
    add_bos, add_eos = _added_specials(tokenizer)
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    extra_stops = [i for i in stop_ids if i != ids.get("eos")]
    return TokenizerMeta(
        pre=pre,
        tokens=tokens,
        types=types,
        merges=merges,
        special_ids=ids,
        add_bos=add_bos,
        add_eos=add_eos,
        add_prefix_space=bool(_byte_level_step(spec).get("add_prefix_space", False)),
        chat_template=template,
        end_of_turn=extra_stops[0] if extra_stops else None,
        notes=notes,
    )


def write_tokenizer(writer: GGUFWriter, meta: TokenizerMeta) -> None:
    writer.add_tokenizer_model("gpt2")  # llama.cpp's name for byte-level BPE
    writer.add_tokenizer_pre(meta.pre)
    writer.add_token_list(meta.tokens)
    writer.add_token_types(meta.types)
    writer.add_token_merges(meta.merges)
    adders = {
        "bos": writer.add_bos_token_id,
        "eos": writer.add_eos_token_id,
        "unk": writer.add_unk_token_id,
        "pad": writer.add_pad_token_id,
    }
    for name, token_id in meta.special_ids.items():
        adders[name](token_id)
    if meta.end_of_turn is not None:
        writer.add_eot_token_id(meta.end_of_turn)
    writer.add_add_bos_token(meta.add_bos)
    writer.add_add_eos_token(meta.add_eos)
    if meta.add_prefix_space:
        writer.add_add_space_prefix(True)
    if meta.chat_template:
        writer.add_chat_template(meta.chat_template)


def _backend_json(tokenizer: PreTrainedTokenizerBase) -> dict[str, object]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ExportError(
            f"the tokenizer ({type(tokenizer).__name__}) has no tokenizers-library form to read it from",
            fix="save the model with a fast tokenizer (tokenizer.json)",
            where=WHERE,
        )
    spec = json.loads(backend.to_str())
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or not _byte_level_step(spec):
        kind = f"{model.get('type')}{' with byte fallback' if model.get('byte_fallback') else ''}"
        raise ExportError(
            f"GGUF export writes byte-level BPE tokenizers only; this one is {kind}",
            fix="byte-level BPE models (GPT-2, Llama 3, Qwen2) can be exported; use `llmft merge` for others",
            where=WHERE,
        )
    return spec


def _byte_level_step(spec: dict[str, object]) -> dict[str, object]:
    """The ByteLevel pre-tokenizer, alone or the last step of a Sequence; {} when there is none."""
    pre = spec.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if isinstance(pre, dict) else []
    return next((s for s in steps if s.get("type") == "ByteLevel"), {})


def _pre_tokenizer(spec: dict[str, object]) -> tuple[str, list[str]]:
    """llama.cpp's name for the splitting rule, and notes on what a reader may do differently."""
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX as QWEN2_SPLIT

    notes: list[str] = []
    normalizer = spec.get("normalizer")
    if normalizer is not None and normalizer.get("type") != "NFC":  # type: ignore[union-attr]
        raise ExportError(
            f"the tokenizer normalizes text with {normalizer.get('type')}, which GGUF cannot describe",  # type: ignore[union-attr]
            fix="use `llmft merge` for this model",
            where=WHERE,
        )
    if normalizer is not None:
        notes.append("the tokenizer applies NFC; GGUF readers may not, so feed them NFC-normalized text")
    pre = spec["pre_tokenizer"]
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):  # type: ignore[union-attr]
        return "gpt-2", notes
    steps = pre.get("pretokenizers", [])  # type: ignore[union-attr]
    split = (
        steps[0].get("pattern", {}).get("Regex")
        if len(steps) == 2 and steps[0].get("type") == "Split"
        else None
    )
    named = {QWEN2_SPLIT: "qwen2", _LLAMA3_SPLIT: "llama-bpe"}
    if split in named and not steps[1].get("use_regex", True):
        return named[split], notes
    raise ExportError(
        "the tokenizer splits text by a rule GGUF readers do not know by name",
        fix="GGUF export knows GPT-2, Llama 3 and Qwen2 splitting; use `llmft merge` for this model",
        where=WHERE,
    )


def _vocabulary(
    tokenizer: PreTrainedTokenizerBase, spec: dict[str, object], rows: int
) -> tuple[list[str], list[int]]:
    """Tokens in id order with their kinds; embedding rows beyond the vocabulary get unused placeholders."""
    vocab = tokenizer.backend_tokenizer.get_vocab(with_added_tokens=True)
    size = max(rows, max(vocab.values()) + 1)
    by_id = {i: token for token, i in vocab.items()}
    added = {entry["id"]: entry for entry in spec.get("added_tokens", [])}  # type: ignore[union-attr]
    tokens, types = [], []
    for i in range(size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
            continue
        tokens.append(by_id[i])
        entry = added.get(i)
        types.append(NORMAL if entry is None else CONTROL if entry.get("special") else USER_DEFINED)
    return tokens, types


def _merges(spec: dict[str, object]) -> list[str]:
    merges = spec["model"].get("merges", [])  # type: ignore[index, union-attr]
    return [m if isinstance(m, str) else " ".join(m) for m in merges]


def _added_specials(tokenizer: PreTrainedTokenizerBase) -> tuple[bool, bool]:
    """Whether encoding adds BOS in front / EOS at the end, seen on a probe text."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    add_bos = bos is not None and len(full) > len(plain) and full[0] == bos
    add_eos = eos is not None and len(full) > len(plain) and full[-1] == eos
    return add_bos, add_eos


__all__ = ["TokenizerMeta", "tokenizer_meta", "write_tokenizer"]
