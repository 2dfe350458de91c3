"""Scores of generated answers, against the reference implementations (rouge-score, sacrebleu)."""

from __future__ import annotations

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from llmft.errors import EnvironmentProblem
from llmft.evaluate import generation

PREDICTIONS = ["The sky is blue.", " tree moon bird dog ", "5", "The grass is red."]
REFERENCES = ["The sky is blue.", "tree moon bird dog", "4", "The grass is green."]


def test_scores_match_the_reference_libraries() -> None:
    found = generation.scores(PREDICTIONS, REFERENCES)
    assert found["exact_match"] == 0.5  # whitespace around an answer does not count
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    per_row = [scorer.score(r, p.strip()) for p, r in zip(PREDICTIONS, REFERENCES)]
    for key in ("rouge1", "rouge2", "rougeL"):
        assert found[key] == pytest.approx(sum(s[key].fmeasure for s in per_row) / 4)
    preds = [p.strip() for p in PREDICTIONS]
    assert found["bleu"] == pytest.approx(sacrebleu.corpus_bleu(preds, [REFERENCES]).score)
    assert found["chrf"] == pytest.approx(sacrebleu.corpus_chrf(preds, [REFERENCES]).score)
    assert set(found) == set(generation.SCORE_NAMES)


def test_perfect_answers_score_full_marks() -> None:
    found = generation.scores(REFERENCES, REFERENCES)
    assert found["exact_match"] == found["rouge1"] == found["rougeL"] == 1.0
    assert found["bleu"] == pytest.approx(100.0) and found["chrf"] == pytest.approx(100.0)


def test_missing_packages_are_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generation, "missing_packages", lambda: ["sacrebleu"])
    expected = r"^evaluation.generate needs sacrebleu, which is not installed$"
    with pytest.raises(EnvironmentProblem, match=expected):
        generation.scores(["a"], ["a"])


def _config():  # noqa: ANN202
    from llmft.config.load import validate_dict

    config, _ = validate_dict(
        {
            "data": {"dataset": {"train_file": "t.jsonl"}},
            "model": {"name_or_path": "gpt2"},
            "evaluation": {"generate": {}},
        }
    )
    return config


def _generation_eval(task: str, rows: dict, out):  # noqa: ANN202
    config = _config()
    return generation.generation_eval(config.evaluation, config.training, config.seed, task, None, rows, out)


def test_nothing_to_score_is_refused_not_skipped(tmp_path) -> None:
    from llmft.errors import ConfigError

    rows = {"train": [{"text": "a"}], "validation": [{"text": "plain text has no answer"}]}
    with pytest.raises(ConfigError, match="evaluation.generate has nothing to score"):
        _generation_eval("causal_lm", rows, tmp_path)
    with pytest.raises(ConfigError, match="needs a model that generates text, and this run's task is"):
        _generation_eval("sequence_classification", rows, tmp_path)
    chat = {
        "validation": [
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
        ]
    }
    assert _generation_eval("causal_lm", chat, tmp_path) is not None
