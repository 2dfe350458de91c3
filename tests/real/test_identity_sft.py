"""SFT on the real model learns a new identity and keeps what it knew (`make test-real`).

SmolLM2-135M-Instruct calls itself SmolLM. A short LoRA run (r 8 on the attention projections) on the
English rows of shared/data/identity.json, with the name "Llamalo" and the author "the llmft team" filled in,
plus a few short alpaca rows so that not every answer becomes an introduction, must make it answer held-out
identity questions (two left out of training, one reworded) with the new name, and still answer a general
question the base answered right. The Chinese rows are left out: this is an English model, and their
tokens would triple the run's cost on 2 cores.

Measured (15 steps): 2.0 min wall on the 2-core machine at a load average of 2.5 (36 min at 10-16). The
base answered "My name is Elena, ...", "I'm glad you're here. I'm a LinguaLingua, ...", "I'm Dr. Elena Luna,
..."; the run "My name is Llamalo.", "I am Llamalo, a llmft llmft ...", "I am Llamalo, the AI assistant.";
both "The capital of France is Paris."
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_model

NAME, AUTHOR = "Llamalo", "the llmft team"
HELD_OUT = ("What is your name?", "What are you called?")  # identity rows left out of training
REWORDED = "Please tell me your name."  # in no row, in any wording the training rows use
GENERAL = ("What is the capital of France?", "Paris")  # a question and the word its right answer has
ALPACA_ROWS = 24  # short alpaca rows trained alongside (answers of at most 160 characters)


def identity_rows(shared: Path) -> list[dict[str, str]]:
    """The English identity rows with the placeholders filled, minus the held-out questions."""
    rows = json.loads((shared / "identity.json").read_text(encoding="utf-8"))
    filled = [
        {**row, "output": row["output"].replace("{{name}}", NAME).replace("{{author}}", AUTHOR)}
        for row in rows
        if row["instruction"].isascii()
    ]
    return [row for row in filled if row["instruction"] not in HELD_OUT]


def alpaca_rows(shared: Path) -> list[dict[str, str]]:
    rows = json.loads((shared / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    short = [row for row in rows if len(row["output"]) <= 160 and not row["input"]]
    return short[:ALPACA_ROWS]


@pytest.fixture(scope="module")
def answers(
    real_model, shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[str]]:  # noqa: ANN001
    """The base's and the trained run's greedy answers to the held-out and general questions."""
    tmp = tmp_path_factory.mktemp("identity")
    data = tmp / "identity_train.json"
    data.write_text(
        json.dumps(identity_rows(shared_data_dir) + alpaca_rows(shared_data_dir)), encoding="utf-8"
    )
    run_dir = real_model.train(
        {
            "data": {"dataset": {"train_file": str(data)}, "tokenization": {"max_length": 96}},
            "model": {"adapter": {"type": "lora", "r": 8, "alpha": 16}},
            "training": {
                "epochs": 3,
                "batch_size": 8,
                "learning_rate": 2e-3,
                "warmup_steps": 1,
                "eval_strategy": "no",
                "save_strategy": "no",
                "logging_steps": 1,
            },
        },
        tmp,
    )
    questions = [*HELD_OUT, REWORDED, GENERAL[0]]
    return {
        "before": real_model.generate(real_model.copy, questions, tmp / "before.jsonl", max_new_tokens=24),
        "after": real_model.generate(run_dir, questions, tmp / "after.jsonl", max_new_tokens=24),
    }


def test_held_out_identity_questions_are_answered_with_the_new_name(answers: dict[str, list[str]]) -> None:
    before, after = answers["before"][:3], answers["after"][:3]
    assert not any(NAME in answer for answer in before), before  # the name was not there to begin with
    assert all(NAME in answer for answer in after), after


def test_a_general_question_is_still_answered_right(answers: dict[str, list[str]]) -> None:
    word = GENERAL[1]
    assert word in answers["before"][3], answers["before"][3]  # the base knew it
    assert word in answers["after"][3], answers["after"][3]
