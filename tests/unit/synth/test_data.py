"""Synthetic data: real file formats, exact row counts, disjoint splits, determinism, and answers that
follow the documented rules - plus a check that a tiny model can actually learn them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from llmft.errors import DataError
from llmft.synth.data import (
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    TASKS,
    WORDS,
    classify_text,
    generate_rows,
    sft_answer,
    split_sizes,
    write_synthetic_data,
)

COLUMNS = {
    "sft": {"instruction", "input", "output"},
    "chat": {"messages"},
    "classification": {"text", "label"},
    "preference": {"prompt", "chosen", "rejected"},
    "kto": {"prompt", "completion", "label"},
}


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _all_rows(files: dict[str, Path]) -> list[dict[str, object]]:
    return [row for path in files.values() for row in _jsonl(path)]


@pytest.mark.parametrize("task", TASKS)
def test_writes_three_splits_with_the_right_sizes_and_format(task: str, synth_data) -> None:
    files = synth_data(task)
    assert set(files) == {"train", "validation", "test"}
    suffix = ".txt" if task == "text" else ".jsonl"
    assert all(path.suffix == suffix and path.name == f"{split}{suffix}" for split, path in files.items())
    counts = {split: len(path.read_text(encoding="utf-8").splitlines()) for split, path in files.items()}
    assert counts == {"train": 160, "validation": 20, "test": 20}
    if task != "text":
        assert all(set(row) == COLUMNS[task] for row in _all_rows(files))


@pytest.mark.parametrize("task", TASKS)
def test_splits_do_not_share_rows(task: str, synth_data) -> None:
    files = synth_data(task)
    lines = {split: set(path.read_text(encoding="utf-8").splitlines()) for split, path in files.items()}
    assert not lines["train"] & lines["validation"]
    assert not lines["train"] & lines["test"]
    assert not lines["validation"] & lines["test"]
    assert sum(len(v) for v in lines.values()) == 200, "rows are distinct within each split too"


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_bytes_other_seed_other_rows(task: str, tmp_path: Path) -> None:
    a = write_synthetic_data(task, tmp_path / "a", rows=40, seed=7)
    b = write_synthetic_data(task, tmp_path / "b", rows=40, seed=7)
    c = write_synthetic_data(task, tmp_path / "c", rows=40, seed=8)
    assert all(a[s].read_bytes() == b[s].read_bytes() for s in a)
    assert a["train"].read_bytes() != c["train"].read_bytes()


def test_sft_outputs_are_the_deterministic_function(synth_data) -> None:
    rows = _all_rows(synth_data("sft"))
    assert all(row["output"] == sft_answer(str(row["instruction"]), str(row["input"])) for row in rows)
    assert len({row["instruction"].split(" the ")[0] for row in rows}) >= 4, "several sub-tasks are mixed"
    assert sft_answer("Reverse the words.", "red blue cat") == "cat blue red"
    assert sft_answer("Repeat the words twice.", "red cat") == "red cat red cat"
    assert sft_answer("How many words are there?", "a b c") == "3"
    assert sft_answer("What is the first word?", "dog cat") == "dog"
    assert sft_answer("What colour is the big banana?") == "The banana is yellow."
    with pytest.raises(DataError):
        sft_answer("Write a poem.")


@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))
def test_reversal_is_an_involution(words: list[str]) -> None:
    text = " ".join(words)
    assert sft_answer("Reverse the words.", sft_answer("Reverse the words.", text)) == text


def test_classification_is_balanced_and_follows_the_keyword_rule(synth_data) -> None:
    files = synth_data("classification")
    rows = _all_rows(files)
    labels = [row["label"] for row in rows]
    assert labels.count("positive") == labels.count("negative") == 100
    for split, path in files.items():
        split_labels = [row["label"] for row in _jsonl(path)]
        assert abs(split_labels.count("positive") - split_labels.count("negative")) <= 1, split
    for row in rows:
        words = {w.strip(".,!?").lower() for w in str(row["text"]).split()}
        assert row["label"] == classify_text(str(row["text"]))
        assert bool(words & set(POSITIVE_WORDS)) == (row["label"] == "positive")
        assert bool(words & set(NEGATIVE_WORDS)) == (row["label"] == "negative")


def test_chat_rows_are_well_formed_conversations(synth_data) -> None:
    rows = _all_rows(synth_data("chat"))
    lengths = set()
    for row in rows:
        messages = row["messages"]
        roles = [m["role"] for m in messages]
        body = roles[1:] if roles[0] == "system" else roles
        assert body == ["user", "assistant"] * (len(body) // 2) and body
        lengths.add(len(body) // 2)
        turns = messages[len(roles) - len(body) :]
        for user, reply in zip(turns[::2], turns[1::2], strict=True):
            instruction, _, inp = user["content"].partition("\n")
            assert reply["content"] == sft_answer(instruction, inp)
    assert any(r["messages"][0]["role"] == "system" for r in rows)
    assert lengths >= {1, 2}, "some conversations are multi-turn"


def test_chat_sharegpt_style(synth_data) -> None:
    rows = _all_rows(synth_data("chat", rows=50, style="sharegpt"))
    assert all(set(row) == {"conversations"} for row in rows)
    for row in rows:
        senders = [turn["from"] for turn in row["conversations"]]
        assert set(senders) <= {"system", "human", "gpt"} and senders[-1] == "gpt"
        assert all(set(turn) == {"from", "value"} for turn in row["conversations"])


def test_preference_chosen_is_right_and_rejected_is_wrong(synth_data) -> None:
    for row in _all_rows(synth_data("preference")):
        instruction, _, inp = str(row["prompt"]).partition("\n")
        assert row["chosen"] == sft_answer(instruction, inp)
        assert row["rejected"] != row["chosen"] and row["rejected"]


def test_kto_rows_are_judged_right_or_wrong_in_equal_numbers(synth_data) -> None:
    rows = _all_rows(synth_data("kto"))
    for row in rows:
        instruction, _, inp = str(row["prompt"]).partition("\n")
        assert (row["completion"] == sft_answer(instruction, inp)) is row["label"]
    assert sum(bool(r["label"]) for r in rows) == 100, "balanced"


def test_text_is_one_plain_document_per_line(synth_data) -> None:
    lines = synth_data("text")["train"].read_text(encoding="utf-8").splitlines()
    assert len(lines) == 160 and all(line.strip() and not line.startswith("{") for line in lines)
    assert all(line.endswith(".") for line in lines)
    assert generate_rows("text", 3, 0) == generate_rows("text", 3, 0)
    assert all(isinstance(doc, str) for doc in generate_rows("text", 3, 0))


@given(st.integers(3, 500), st.floats(0.0, 0.4), st.floats(0.0, 0.4))
def test_split_sizes_add_up(rows: int, val: float, test: float) -> None:
    n_train, n_val, n_test = split_sizes(rows, val, test)
    assert n_train + n_val + n_test == rows and n_train >= 1
    assert (n_val > 0) == (val > 0) and (n_test > 0) == (test > 0)


def test_zero_fraction_skips_the_split(tmp_path: Path) -> None:
    files = write_synthetic_data("sft", tmp_path, rows=10, validation_fraction=0.2, test_fraction=0.0)
    assert set(files) == {"train", "validation"} and not (tmp_path / "test.jsonl").exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"task": "poetry"},
        {"task": "sft", "style": "sharegpt"},
        {"task": "chat", "style": "weird"},
        {"task": "sft", "validation_fraction": 1.5},
        {"task": "sft", "rows": 2},
        {"task": "sft", "validation_fraction": 0.5, "test_fraction": 0.5},
    ],
)
def test_bad_requests_are_data_errors(kwargs: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(DataError):
        write_synthetic_data(out_dir=tmp_path, **kwargs)


def test_cli_synth_data_writes_files(tmp_path: Path) -> None:
    from llmft.cli.synth import app

    out = tmp_path / "cli-data"
    args = ["data", "--task", "chat", "--rows", "30", "--seed", "2", "--out", str(out), "--style", "sharegpt"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "(24 rows)" in result.output
    assert "conversations" in _jsonl(out / "train.jsonl")[0]


def test_cli_synth_data_reports_user_errors_as_data_errors(tmp_path: Path) -> None:
    from llmft.cli.synth import app

    result = CliRunner().invoke(app, ["data", "--task", "nope", "--out", str(tmp_path)])
    assert isinstance(result.exception, DataError)


def test_a_tiny_model_learns_the_sft_task(tiny_model) -> None:
    """The point of the data: 80 steps of plain AdamW must cut a tiny gpt2's loss by more than half."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    path = tiny_model("gpt2")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    rows = generate_rows("sft", 256, 0)
    texts = [f"{r['instruction']}\n{r['input']}\n{r['output']}{tokenizer.eos_token}" for r in rows]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(80):
        batch = tokenizer(texts[(step * 16) % 256 :][:16], return_tensors="pt", padding=True)
        labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.5 * losses[0]


def test_a_tiny_bert_learns_the_classification_rule(tiny_model) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    path = tiny_model("bert")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    rows = generate_rows("classification", 400, 0)
    texts = [str(r["text"]) for r in rows]
    labels = torch.tensor([r["label"] == "positive" for r in rows]).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(60):
        i = (step * 16) % 320
        loss = model(
            **tokenizer(texts[i : i + 16], return_tensors="pt", padding=True), labels=labels[i : i + 16]
        ).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        predicted = model(**tokenizer(texts[320:], return_tensors="pt", padding=True)).logits.argmax(-1)
    assert (predicted == labels[320:]).float().mean().item() > 0.8
