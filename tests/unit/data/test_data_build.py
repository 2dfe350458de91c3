"""The data builder end to end: file → format → canonical rows per split (prepare_rows), then → tokens for
each task (encode_splits), on the shared demo data and on synthetic data of every task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from llmft.config.load import load_config
from llmft.config.schema import RunConfig
from llmft.data.build import PreparedData, encode_splits, prepare_rows
from llmft.data.tokenize import IGNORE
from llmft.errors import DataError


def _config(data_file: Path | str, *overrides: str) -> RunConfig:
    return load_config(
        None, [f"data.dataset.train_file={data_file}", "model.name_or_path=unused", *overrides]
    )


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return lambda arch: AutoTokenizer.from_pretrained(tiny_model(arch))


# ------------------------------------------------------------------------------------------- prepare_rows
def test_prepares_the_shared_alpaca_demo(shared_data_dir: Path) -> None:
    path = shared_data_dir / "alpaca_en_demo.json"
    config = _config(path)

    prepared = prepare_rows(config.data, config.seed)

    assert prepared.format == "alpaca" and prepared.origin == str(path)
    assert prepared.validation_carved
    assert {s: (r.rows_in, r.kept) for s, r in prepared.reports.items()} == {
        "train": (899, 899),
        "validation": (100, 100),
    }
    assert [m["role"] for m in prepared.rows["train"][0]["messages"]] == ["user", "assistant"]
    assert not prepared.has_labels and prepared.label_names(None) is None


def test_the_fingerprint_follows_the_rows(tmp_path: Path) -> None:
    rows = [{"text": f"line {i}"} for i in range(30)]
    path = _jsonl(tmp_path / "a.jsonl", rows)
    changed = _jsonl(tmp_path / "b.jsonl", [*rows[:-1], {"text": "something else"}])

    def fingerprint(data: Path, *overrides: str) -> str:
        config = _config(data, *overrides)
        return prepare_rows(config.data, config.seed).fingerprint

    assert fingerprint(path) == fingerprint(path)
    assert fingerprint(path) != fingerprint(changed)
    assert fingerprint(path) != fingerprint(path, "seed=7")  # another carve-out


FORMATS = {
    "sft": "alpaca",
    "chat": "messages",
    "classification": "classification",
    "preference": "preference",
    "text": "text",
}


@pytest.mark.parametrize("task", sorted(FORMATS))
def test_synthetic_data_of_every_task(task: str, synth_data) -> None:
    files = synth_data(task)
    config = _config(
        files["train"],
        f"data.dataset.validation_file={files['validation']}",
        f"data.dataset.test_file={files['test']}",
    )

    prepared = prepare_rows(config.data, config.seed)

    assert prepared.format == FORMATS[task]
    assert {s: r.kept for s, r in prepared.reports.items()} == {"train": 160, "validation": 20, "test": 20}
    assert not prepared.validation_carved
    assert prepared.has_labels == (task == "classification")


def test_column_mapping_makes_a_format(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "qa.jsonl", [{"question": "Q?", "answer": "A.", "id": 1}] * 4)

    config = _config(
        path, 'data.preprocessing.column_mapping={"question": "instruction", "answer": "output"}'
    )
    prepared = prepare_rows(config.data, config.seed)

    assert prepared.format == "alpaca"
    assert prepared.rows["train"][0]["messages"][1] == {"role": "assistant", "content": "A."}


def test_no_rows_left_after_filtering_says_why(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "short.jsonl", [{"text": "tiny"}] * 5)

    config = _config(path, "data.preprocessing.min_length=10")
    expected = (
        r"no training rows left after preprocessing \(0/\d rows kept; dropped: \d shorter than min_length"
    )
    with pytest.raises(DataError, match=expected):
        prepare_rows(config.data, config.seed)


def test_a_bad_row_in_the_validation_file_names_that_file(tmp_path: Path) -> None:
    train = _jsonl(tmp_path / "train.jsonl", [{"text": "fine"}] * 3)
    validation = _jsonl(tmp_path / "dev.jsonl", [{"text": "fine"}, {"text": ""}])
    config = _config(train, f"data.dataset.validation_file={validation}")

    with pytest.raises(DataError, match=r"row 2: empty text") as err:
        prepare_rows(config.data, config.seed)
    assert err.value.where == f"{validation} (validation split)"


# ----------------------------------------------------------------------------------------------- labels
def _labelled(labels: list[object]) -> PreparedData:
    rows = [{"text": f"row {i}", "label": label} for i, label in enumerate(labels)]
    return PreparedData("classification", {"train": rows}, {}, "memory")


def test_label_names_are_sorted_and_stable() -> None:
    assert _labelled([10, 2, 1, 2]).label_names(None) == ["1", "2", "10"]
    assert _labelled(["pos", "neg", "neutral"]).label_names(None) == ["neg", "neutral", "pos"]
    assert _labelled(["neutral", "pos", "neg"]).label_names(None) == ["neg", "neutral", "pos"]


def test_declared_label_names_keep_their_order_and_must_cover_the_data() -> None:
    assert _labelled(["pos", "neg"]).label_names(["pos", "neg", "neutral"]) == ["pos", "neg", "neutral"]
    with pytest.raises(DataError, match=r"labels \['meh'\] are not in data.preprocessing.label_names"):
        _labelled(["pos", "meh"]).label_names(["pos", "neg"])


DECLARED = "data.preprocessing.label_names=[neg, pos]"


def test_a_label_outside_the_declared_label_names_names_its_file_and_row(tmp_path: Path) -> None:
    rows = [
        {"text": "good", "label": "pos"},
        {"text": "bad", "label": "neg"},
        {"text": "meh", "label": "meh"},
    ]
    config = _config(_jsonl(tmp_path / "train.jsonl", rows), DECLARED, "data.dataset.validation_fraction=0")

    with pytest.raises(
        DataError, match=r"row 3: label not in label_names \(`meh`; declared: neg, pos\)"
    ) as err:
        prepare_rows(config.data, config.seed)
    assert str(tmp_path / "train.jsonl") in str(err.value.where)
    assert "on_bad_rows: skip" in str(err.value.fix)


def test_a_label_outside_the_declared_label_names_in_validation_names_that_file(tmp_path: Path) -> None:
    train = _jsonl(
        tmp_path / "train.jsonl", [{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}]
    )
    validation = _jsonl(
        tmp_path / "dev.jsonl", [{"text": "ok", "label": "pos"}, {"text": "so-so", "label": "neutral"}]
    )
    config = _config(train, DECLARED, f"data.dataset.validation_file={validation}")

    with pytest.raises(DataError, match=r"row 2: label not in label_names \(`neutral`") as err:
        prepare_rows(config.data, config.seed)
    assert err.value.where == f"{validation} (validation split)"


def test_skip_drops_and_counts_labels_outside_the_declared_label_names(tmp_path: Path, tokenizer) -> None:
    train = _jsonl(
        tmp_path / "train.jsonl",
        [
            {"text": f"film {i}", "label": w}
            for i, w in enumerate(["pos", "neg", "meh", "pos", "neg", "neutral"])
        ],
    )
    validation = _jsonl(
        tmp_path / "dev.jsonl", [{"text": "ok", "label": "pos"}, {"text": "hm", "label": "meh"}]
    )
    config = _config(
        train, DECLARED, "data.preprocessing.on_bad_rows=skip", f"data.dataset.validation_file={validation}"
    )

    prepared = prepare_rows(config.data, config.seed)

    reports = prepared.reports
    assert (reports["train"].rows_in, reports["train"].kept) == (6, 4)
    assert reports["train"].dropped == {"label not in label_names": 2}
    assert [n for n, _ in reports["train"].bad_rows] == [3, 6]
    assert reports["validation"].dropped == {"label not in label_names": 1}
    assert reports["validation"].to_dict()["dropped"] == {"label not in label_names": 1}  # data_report.json
    assert "4/6 rows kept; dropped: 2 label not in label_names" in reports["train"].summary()
    assert {r["label"] for split in prepared.rows.values() for r in split} == {"pos", "neg"}

    encoded = encode_splits(prepared, config.data, tokenizer("bert"), "sequence_classification")

    assert encoded.label_names == ["neg", "pos"]
    assert {s: st.rows for s, st in encoded.stats.items()} == {"train": 4, "validation": 1}


def test_classification_ids_and_integer_labels(tmp_path: Path, tokenizer) -> None:
    rows = [{"text": f"film number {i} was {w}", "label": w} for i, w in enumerate(["good", "bad"] * 10)]
    config = _config(_jsonl(tmp_path / "cls.jsonl", rows))
    prepared = prepare_rows(config.data, config.seed)

    encoded = encode_splits(prepared, config.data, tokenizer("bert"), "sequence_classification")

    assert encoded.label_names == ["bad", "good"] and encoded.template is None
    for split in ("train", "validation"):
        for example, row in zip(encoded.examples[split], prepared.rows[split], strict=True):
            assert example["labels"] == encoded.label_names.index(row["label"])


def test_a_label_seen_only_in_validation_is_not_a_crash(tmp_path: Path, tokenizer) -> None:
    train = _jsonl(
        tmp_path / "train.jsonl", [{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}]
    )
    validation = _jsonl(tmp_path / "dev.jsonl", [{"text": "so-so", "label": "neutral"}])
    config = _config(train, f"data.dataset.validation_file={validation}")
    prepared = prepare_rows(config.data, config.seed)

    try:
        encoded = encode_splits(prepared, config.data, tokenizer("bert"), "sequence_classification")
    except DataError as err:
        assert "neutral" in err.message
    else:
        assert "neutral" in encoded.label_names


def test_classification_without_labels_is_an_error(tmp_path: Path, tokenizer) -> None:
    config = _config(_jsonl(tmp_path / "t.jsonl", [{"text": "just text"}] * 4))
    prepared = prepare_rows(config.data, config.seed)

    with pytest.raises(DataError, match="sequence_classification but the data has no labels"):
        encode_splits(prepared, config.data, tokenizer("bert"), "sequence_classification")


# ------------------------------------------------------------------------------------------ encode_splits
def test_causal_lm_on_alpaca_rows_trains_the_responses(shared_data_dir: Path, tokenizer) -> None:
    config = _config(
        shared_data_dir / "alpaca_en_demo.json",
        "data.dataset.max_train_rows=60",
        "data.tokenization.max_length=2048",
    )
    prepared = prepare_rows(config.data, config.seed)
    llama = tokenizer("llama")

    encoded = encode_splits(prepared, config.data, llama, "causal_lm")

    assert encoded.template == "tokenizer"
    assert {s: st.rows for s, st in encoded.stats.items()} == {"train": 54, "validation": 6}
    for example, row in zip(encoded.examples["train"], prepared.rows["train"], strict=True):
        trained = [t for t in example["labels"] if t != IGNORE]
        assert llama.decode(trained, skip_special_tokens=True) == row["messages"][-1]["content"]


def test_preference_rows_learn_the_chosen_answer(synth_data, tokenizer) -> None:
    files = synth_data("preference")
    config = _config(files["train"], "data.dataset.max_train_rows=20")
    prepared = prepare_rows(config.data, config.seed)
    gpt2 = tokenizer("gpt2")
    raw = {r["prompt"]: r for r in map(json.loads, files["train"].read_text(encoding="utf-8").splitlines())}

    encoded = encode_splits(prepared, config.data, gpt2, "causal_lm")

    assert encoded.template == "chatml"  # gpt2 has no chat template
    for example, row in zip(encoded.examples["train"], prepared.rows["train"], strict=True):
        source = raw[row["messages"][0]["content"]]
        trained = gpt2.decode([t for t in example["labels"] if t != IGNORE], skip_special_tokens=True)
        assert trained == source["chosen"] + "<|im_end|>"
        assert f"assistant\n{source['rejected']}<|im_end|>" not in gpt2.decode(example["input_ids"])


def test_seq2seq_encodes_targets_as_labels(tmp_path: Path, tokenizer) -> None:
    rows = [{"input": f"translate: word {i}", "target": f"mot {i}"} for i in range(10)]
    config = _config(_jsonl(tmp_path / "s2s.jsonl", rows), "data.dataset.validation_fraction=0")
    prepared = prepare_rows(config.data, config.seed)
    t5 = tokenizer("t5")

    encoded = encode_splits(prepared, config.data, t5, "seq2seq_lm")

    assert prepared.format == "seq2seq" and encoded.template is None
    assert [t5.decode(e["labels"], skip_special_tokens=True) for e in encoded.examples["train"]] == [
        r["target"] for r in rows
    ]


def test_plain_text_for_causal_lm_is_chunked(shared_data_dir: Path, tokenizer) -> None:
    config = _config(
        shared_data_dir / "wiki_demo.txt", "data.tokenization.max_length=64", "data.dataset.max_train_rows=50"
    )
    prepared = prepare_rows(config.data, config.seed)

    encoded = encode_splits(prepared, config.data, tokenizer("gpt2"), "causal_lm")

    stats = encoded.stats["train"]
    assert prepared.format == "text" and encoded.template is None
    assert stats.rows >= len(prepared.rows["train"]) and stats.truncated == 0
    assert all(len(e["input_ids"]) <= 64 and e["labels"] == e["input_ids"] for e in encoded.examples["train"])


def test_nothing_left_after_tokenization_is_an_error(tmp_path: Path, tokenizer) -> None:
    rows = [{"instruction": "Write a long story about " + "cats " * 40, "output": "Once..."}] * 4
    config = _config(
        _jsonl(tmp_path / "long.jsonl", rows),
        "data.tokenization.max_length=8",
        "data.tokenization.truncation=false",
    )
    prepared = prepare_rows(config.data, config.seed)

    with pytest.raises(DataError, match="no training examples left after tokenization"):
        encode_splits(prepared, config.data, tokenizer("llama"), "causal_lm")


def test_parallel_encoding_equals_one_process(shared_data_dir: Path, tokenizer, monkeypatch) -> None:
    """Worker processes (data.tokenization.num_proc) give the same examples, in order, and statistics."""
    import llmft.data.build as build
    from llmft.data.tokenize import Encoder

    config = _config(
        shared_data_dir / "alpaca_en_demo.json",
        "data.dataset.max_train_rows=120",
        "data.tokenization.max_length=96",
    )
    prepared = prepare_rows(config.data, config.seed)
    llama = tokenizer("llama")
    encoder = Encoder(
        "causal_lm",
        llama,
        config.data.tokenization,
        config.data.preprocessing,
        build.choose_template("auto", llama, prepared.format),
        None,
    )
    rows = prepared.rows["train"]
    monkeypatch.setattr(build, "PARALLEL_MIN_ROWS", 10)
    serial, serial_stats = build.encode_parallel(rows, encoder, workers=1)
    parallel, parallel_stats = build.encode_parallel(rows, encoder, workers=2)
    assert parallel == serial
    assert parallel_stats.to_dict() == serial_stats.to_dict()
    assert serial_stats.truncated > 0  # max_length 96 cuts some alpaca rows: the counts are merged too
