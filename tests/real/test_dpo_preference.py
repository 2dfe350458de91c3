"""DPO on the real model raises held-out reward accuracy above chance (`make test-real`).

The preference set is built from real data, shared/data/alpaca_en_demo.json: for each instruction the chosen
answer is its own reference answer and the rejected one is the reference answer of the NEXT instruction in
the same split (a cyclic shift). Why this and not the base model's own greedy answer: generating a hundred
answers costs minutes on 2 cores, and SmolLM's answers are often as good as alpaca's, which would make the
labels noise; "answer the question that was asked" is a preference every rater shares. The shift puts every
answer in its split once as chosen and once as rejected, so nothing about an answer alone (length, style,
quality) tells the two apart: only how it fits its prompt does, and that is what the accuracy measures.

Before training the LoRA policy is the reference (B = 0), so every implicit reward is 0 and no pair is
ranked (accuracy 0 with ties counted as misses; a model that learned nothing would be at chance, 0.5). After
a short LoRA DPO run, the held-out pairs (instructions the run never saw) must be ranked right well above
chance: 19 of 24 or more, which a coin reaches with probability 0.0033.

Measured (8 steps): 2.5 min wall at a load average of 2.5 (20 min at 6-13). Training accuracy 0 at step
1 (all ties) and 1.0 from step 6; held-out accuracy 0.958 (23 of 24), reward margin 1.21 (chosen -0.09,
rejected -1.29).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_model

TRAIN_PAIRS, HELD_OUT_PAIRS = 16, 24
MIN_ACCURACY = 19 / 24  # P(Binomial(24, 0.5) >= 19) = 0.0033


def short_rows(shared: Path) -> list[dict[str, str]]:
    """Alpaca rows with no input and short texts, in file order: cheap sequences on 2 cores."""
    rows = json.loads((shared / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    return [r for r in rows if not r["input"] and len(r["instruction"]) <= 100 and len(r["output"]) <= 150]


def shifted_pairs(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Chosen: the row's own answer; rejected: the next row's (the last row takes the first's)."""
    return [
        {
            "prompt": row["instruction"],
            "chosen": row["output"],
            "rejected": rows[(i + 1) % len(rows)]["output"],
        }
        for i, row in enumerate(rows)
    ]


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(real_model, shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("dpo")
    rows = short_rows(shared_data_dir)
    assert len(rows) >= TRAIN_PAIRS + HELD_OUT_PAIRS
    train = write_jsonl(tmp / "train.jsonl", shifted_pairs(rows[:TRAIN_PAIRS]))
    held_out = write_jsonl(
        tmp / "held_out.jsonl", shifted_pairs(rows[TRAIN_PAIRS : TRAIN_PAIRS + HELD_OUT_PAIRS])
    )
    return real_model.train(
        {
            "data": {
                "dataset": {"train_file": str(train), "validation_file": str(held_out)},
                "tokenization": {"max_length": 96},
            },
            "model": {"adapter": {"type": "lora", "r": 8, "alpha": 16}},
            "training": {
                "objective": "dpo",
                "preference": {"beta": 0.1, "max_prompt_length": 32},
                "epochs": 2,
                "batch_size": 4,
                "learning_rate": 2e-3,
                "warmup_steps": 1,
                "eval_strategy": "no",
                "save_strategy": "no",
                "logging_steps": 1,
            },
        },
        tmp,
    )


def test_dpo_ranks_held_out_pairs_above_chance(run_dir: Path) -> None:
    results = json.loads((run_dir / "eval_results.json").read_text())
    print(f"held-out pairs after DPO: {results}")
    assert results["eval_rewards/accuracies"] >= MIN_ACCURACY, results
    assert results["eval_rewards/margins"] > 0, results
