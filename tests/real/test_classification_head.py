"""A classification head on the real model trains (`make test-real`).

`llmft synth data --task classification` writes short sentences labelled positive or negative (any positive
word makes a sentence positive). A seq-cls run on SmolLM2 (its new `score` head trained in full, LoRA r 8 on
the attention projections) of a few steps must classify the test split well above chance: the split is
balanced, so a head that learned nothing scores about 0.5; 30 of 40 or more, which a coin reaches with
probability 0.0011.

Measured (20 steps: 2 epochs of 160 rows): 2.7 min wall on the 2-core machine at a load average of 2.5;
test accuracy 1.0 (40 of 40), test loss 0.0025. Fewer steps fall short: 4 steps gave 0.65, 10 gave 0.80.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_model

ROWS, TEST_ROWS = 400, 40  # synth's default split: 80% train, 10% validation, 10% test
TRAIN_ROWS = 160
MIN_ACCURACY = 30 / 40  # P(Binomial(40, 0.5) >= 30) = 0.0011


@pytest.fixture(scope="module")
def run_dir(real_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("classification")
    real_model.llmft(
        "synth", "data", "--task", "classification", "--rows", str(ROWS), "--out", tmp / "data", cwd=tmp
    )
    return real_model.train(
        {
            "data": {
                "dataset": {"dir": str(tmp / "data"), "train_file": "train.jsonl", "test_file": "test.jsonl",
                            "max_train_rows": TRAIN_ROWS, "validation_fraction": 0},
                "tokenization": {"max_length": 32},
            },
            "model": {"task": "sequence_classification", "adapter": {"type": "lora", "r": 8, "alpha": 16}},
            "training": {
                "epochs": 2,
                "batch_size": 16,
                "learning_rate": 3e-3,
                "warmup_steps": 1,
                "eval_strategy": "no",
                "save_strategy": "no",
                "logging_steps": 1,
            },
            "evaluation": {"metrics": ["accuracy"]},
        },
        tmp,
    )  # fmt: skip


def test_the_head_classifies_held_out_sentences_above_chance(run_dir: Path) -> None:
    results = json.loads((run_dir / "eval_results.json").read_text())
    test_rows = [
        json.loads(line) for line in (run_dir.parent / "data" / "test.jsonl").read_text().splitlines()
    ]
    assert len(test_rows) == TEST_ROWS
    majority = (
        max(sum(r["label"] == label for r in test_rows) for label in ("positive", "negative")) / TEST_ROWS
    )
    print(f"test accuracy {results['test_accuracy']} (majority class {majority}); {results}")
    assert majority <= 0.6  # balanced enough that 0.75 is far above what guessing one class scores
    assert results["test_accuracy"] >= MIN_ACCURACY, results
