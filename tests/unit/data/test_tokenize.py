"""Tokenization per task: truncation counted (or rows dropped and counted when it is off), plain text cut
into max_length chunks ending in EOS, classification ids with integer labels, seq2seq labels from the
target (T5), and the tokenizer's own special tokens kept where its own truncation would keep them."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from llmft.config.schema import PreprocessingConfig, TokenizationConfig
from llmft.data.templates import TokenizerTemplate
from llmft.data.tokenize import (
    IGNORE,
    Encoder,
    TokenStats,
    encode_rows,
    encode_text,
    fit_length,
    leading_special_ids,
    special_ids,
)
from llmft.errors import DataError

LONG = "the quick brown fox jumps over the lazy dog and keeps running far away " * 12


@pytest.fixture(scope="module")
def tokenizers(tiny_model) -> dict[str, object]:
    return {arch: AutoTokenizer.from_pretrained(tiny_model(arch)) for arch in ("gpt2", "llama", "bert", "t5")}


def _encoder(task: str, tokenizer, max_length: int = 512, truncation: bool = True, **extra) -> Encoder:
    return Encoder(
        task,
        tokenizer,
        TokenizationConfig(max_length=max_length, truncation=truncation),
        PreprocessingConfig(),
        **extra,
    )


def _chat(answer: str, question: str = "Tell me something.") -> dict[str, object]:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def test_special_ids_of_each_tokenizer(tokenizers) -> None:
    llama, gpt2, bert, t5 = (tokenizers[a] for a in ("llama", "gpt2", "bert", "t5"))

    assert special_ids(llama) == ([llama.bos_token_id], [])
    assert leading_special_ids(llama) == [llama.bos_token_id]
    assert special_ids(gpt2) == ([], [])
    assert special_ids(bert) == ([bert.cls_token_id], [bert.sep_token_id])
    assert special_ids(t5) == ([], [t5.eos_token_id])


# ------------------------------------------------------------------------------------------- causal LM
def test_long_conversations_are_truncated_and_counted(tokenizers) -> None:
    llama = tokenizers["llama"]
    encoder = _encoder("causal_lm", llama, max_length=48, template=TokenizerTemplate(llama))
    full = _encoder("causal_lm", llama, max_length=4096, template=TokenizerTemplate(llama)).encode(
        _chat(LONG)
    )[0]

    examples, stats = encode_rows([_chat(LONG), _chat("Short."), _chat(LONG)], encoder)

    assert (stats.rows, stats.truncated, stats.dropped_too_long) == (3, 2, 0)
    assert [len(e["input_ids"]) for e in examples] == [48, len(examples[1]["input_ids"]), 48]
    assert examples[0]["input_ids"] == full["input_ids"][:48]
    assert examples[0]["labels"] == full["labels"][:48]
    assert stats.trained_tokens == sum(1 for e in examples for t in e["labels"] if t != IGNORE)


def test_without_truncation_long_rows_are_dropped_and_counted(tokenizers) -> None:
    llama = tokenizers["llama"]
    encoder = _encoder("causal_lm", llama, max_length=48, truncation=False, template=TokenizerTemplate(llama))

    examples, stats = encode_rows([_chat(LONG), _chat("Short."), _chat(LONG)], encoder)

    assert len(examples) == 1 and (stats.rows, stats.truncated, stats.dropped_too_long) == (1, 0, 2)
    assert stats.to_dict()["dropped_too_long"] == 2


def test_a_row_truncated_before_its_answer_is_dropped(tokenizers) -> None:
    llama = tokenizers["llama"]
    short = _chat("Yes.", question="Ok?")
    fits = len(_encoder("causal_lm", llama, template=TokenizerTemplate(llama)).encode(short)[0]["input_ids"])
    encoder = _encoder("causal_lm", llama, max_length=fits, template=TokenizerTemplate(llama))

    examples, stats = encode_rows([_chat("An answer.", question=LONG), short], encoder)

    assert len(examples) == 1 and len(examples[0]["input_ids"]) == fits
    assert (stats.truncated, stats.dropped_too_long) == (1, 1)  # truncated, then nothing left to learn


def test_plain_text_is_cut_into_chunks_that_end_with_eos(tokenizers) -> None:
    gpt2 = tokenizers["gpt2"]
    whole = gpt2(LONG)["input_ids"] + [gpt2.eos_token_id]

    chunks = encode_text(LONG, gpt2, TokenizationConfig(max_length=32))

    assert all(len(c) == 32 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 32
    assert [t for c in chunks for t in c] == whole
    assert chunks[-1][-1] == gpt2.eos_token_id


def test_plain_text_chunks_are_all_kept_with_labels_equal_to_ids(tokenizers) -> None:
    llama = tokenizers["llama"]

    examples, stats = encode_rows(
        [{"text": LONG}, {"text": "short"}], _encoder("causal_lm", llama, max_length=32)
    )

    assert (stats.truncated, stats.dropped_too_long) == (0, 0)
    assert all(e["labels"] == e["input_ids"] for e in examples)
    assert examples[0]["input_ids"][0] == llama.bos_token_id
    assert examples[-1]["input_ids"] == llama("short")["input_ids"] + [llama.eos_token_id]
    assert sum(len(e["input_ids"]) for e in examples) == stats.trained_tokens


def test_add_eos_off_adds_nothing(tokenizers) -> None:
    gpt2 = tokenizers["gpt2"]

    assert encode_text("hello world", gpt2, TokenizationConfig(add_eos=False)) == [
        gpt2("hello world")["input_ids"]
    ]


# -------------------------------------------------------------------------------------------- classification
def test_classification_gives_ids_and_an_integer_label(tokenizers) -> None:
    bert = tokenizers["bert"]
    encoder = _encoder("sequence_classification", bert, label_to_id={"neg": 0, "pos": 1, "3": 2})

    examples, stats = encode_rows(
        [{"text": "a fine film", "label": "pos"}, {"text": "dull", "label": 3}], encoder
    )

    assert examples[0] == {"input_ids": bert("a fine film")["input_ids"], "labels": 1}
    assert examples[1]["labels"] == 2
    assert stats.rows == 2 and stats.trained_tokens == 0


def test_classification_truncation_is_counted_and_keeps_sep(tokenizers) -> None:
    bert = tokenizers["bert"]
    rows = [{"text": LONG, "label": "pos"}, {"text": "short", "label": "neg"}]

    examples, stats = encode_rows(
        rows, _encoder("sequence_classification", bert, 16, label_to_id={"neg": 0, "pos": 1})
    )
    dropped, dropped_stats = encode_rows(
        rows,
        _encoder("sequence_classification", bert, 16, truncation=False, label_to_id={"neg": 0, "pos": 1}),
    )

    assert stats.truncated == 1 and len(examples[0]["input_ids"]) == 16
    assert examples[0]["input_ids"] == bert(LONG, truncation=True, max_length=16)["input_ids"]
    assert examples[0]["input_ids"][-1] == bert.sep_token_id
    assert [e["labels"] for e in dropped] == [0] and dropped_stats.dropped_too_long == 1


def test_an_unknown_label_is_a_data_error(tokenizers) -> None:
    encoder = _encoder("sequence_classification", tokenizers["bert"], label_to_id={"neg": 0, "pos": 1})

    with pytest.raises(DataError, match=r"label 'meh' is not among the labels: neg, pos"):
        encoder.encode({"text": "so-so", "label": "meh"})


# ------------------------------------------------------------------------------------------------- seq2seq
def test_seq2seq_labels_come_from_the_target(tokenizers) -> None:
    t5 = tokenizers["t5"]

    examples, stats = encode_rows(
        [{"input": "translate: the cat", "target": "le chat"}], _encoder("seq2seq_lm", t5)
    )

    assert examples == [
        {"input_ids": t5("translate: the cat")["input_ids"], "labels": t5(text_target="le chat")["input_ids"]}
    ]
    assert examples[0]["labels"][-1] == t5.eos_token_id
    assert stats.trained_tokens == len(examples[0]["labels"])


def test_seq2seq_from_a_conversation_uses_prompt_and_last_answer(tokenizers) -> None:
    t5 = tokenizers["t5"]
    row = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello."},
        ]
    }

    example = _encoder("seq2seq_lm", t5).encode(row)[0]

    assert example["input_ids"] == t5("Be brief.\nHi?")["input_ids"]
    assert example["labels"] == t5(text_target="Hello.")["input_ids"]


@pytest.mark.parametrize("row", [{"input": LONG, "target": "short"}, {"input": "short", "target": LONG}])
def test_seq2seq_truncation_of_source_or_target_is_counted(row: dict[str, str], tokenizers) -> None:
    t5 = tokenizers["t5"]

    examples, stats = encode_rows([row], _encoder("seq2seq_lm", t5, max_length=12))
    _, off = encode_rows([row], _encoder("seq2seq_lm", t5, max_length=12, truncation=False))

    assert stats.truncated == 1 and off.dropped_too_long == 1 and off.rows == 0
    example = examples[0]
    assert len(example["input_ids"]) <= 12 and len(example["labels"]) <= 12
    assert example["input_ids"][-1] == example["labels"][-1] == t5.eos_token_id


# ---------------------------------------------------------------------------------------------- helpers
def test_fit_length_leaves_short_examples_alone() -> None:
    from collections import Counter

    counts: Counter[str] = Counter()
    example = {"input_ids": [1, 2, 3], "labels": [1, 2, 3]}

    assert fit_length(example, TokenizationConfig(max_length=3), counts) is example
    assert fit_length(
        {"input_ids": [5, 6, 7, 8, 9], "labels": 1}, TokenizationConfig(max_length=4), counts, closing=[9]
    ) == {"input_ids": [5, 6, 7, 9], "labels": 1}
    assert counts == {"truncated": 1}


def test_token_stats_percentiles() -> None:
    stats = TokenStats(lengths=list(range(1, 101)))

    assert stats.percentiles() == {"p50": 50, "p90": 90, "p99": 99, "max": 100}
    assert TokenStats().percentiles() == {}
